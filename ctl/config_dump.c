/* config_dump.c — tlsoffctl config dump: the running configuration as commands that tlsoffd -f and
 * tlsoffctl -batch accept and that rebuild it. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static int print_line(const struct nlmsghdr *h, struct nlattr **tb, void *arg, char *err, size_t errlen)
{
	(void)h;
	(void)err;
	(void)errlen;
	struct show *s = arg;
	if (!tb[TLSOFF_A_CONFIG_LINE])
		return -EPROTO;
	if (s->c->json)
		json_string(&s->j, nla_get_string(tb[TLSOFF_A_CONFIG_LINE]));
	else
		printf("%s\n", nla_get_string(tb[TLSOFF_A_CONFIG_LINE]));
	return 0;
}

int cmd_config(struct ctl *c, int argc, char **argv)
{
	if (ctl_wants_help(argc, argv))
		return ctl_help("config");
	if (argc != 1 || (strcmp(argv[0], "dump") && strcmp(argv[0], "show")))
		return ctl_usage(c, "config", "usage: config dump");
	if (!c->json)
		printf("# tlsoffd running configuration (tlsoffctl config dump)\n");
	return ctl_show(c, ctl_get_request(c, TLSOFF_CMD_CONFIG_GET, NULL), print_line, true, NULL);
}

/* tickets keys FILE: the same command as in tlsoff.conf (a dump's first line), so -batch replays a dump. */
int cmd_tickets(struct ctl *c, int argc, char **argv)
{
	if (argc == 0 || ctl_wants_help(argc, argv))
		return argc ? ctl_help("tickets") : ctl_usage(c, "tickets", "usage: tickets keys FILE");
	return ctl_change(c, "tickets", argc, argv);
}

/* metrics listen ADDR:PORT | metrics off: likewise the same command as in tlsoff.conf. */
int cmd_metrics(struct ctl *c, int argc, char **argv)
{
	if (argc == 0 || ctl_wants_help(argc, argv))
		return argc ? ctl_help("metrics") : ctl_usage(c, "metrics", "usage: metrics listen ADDR:PORT | metrics off");
	return ctl_change(c, "metrics", argc, argv);
}

/* user NAME [group GROUP]: a dump carries the daemon's user so that `tlsoffd -f dump` starts the same daemon;
 * -batch replays the dump into a running daemon, which switched user when it started and cannot switch
 * again (it has no CAP_SETUID left). Checked, then skipped with a note. */
int cmd_user(struct ctl *c, int argc, char **argv)
{
	char *words[8], err[TLSOFF_ERR_MAX];
	struct cmd cmd;
	if (argc == 0 || ctl_wants_help(argc, argv))
		return argc ? ctl_help("user") : ctl_usage(c, "user", "usage: user NAME [group GROUP]");
	if (argc + 1 > 8)
		return ctl_usage(c, "user", "usage: user NAME [group GROUP]");
	words[0] = "user";
	memcpy(words + 1, argv, (size_t)argc * sizeof(*argv));
	if (cmd_parse(argc + 1, words, &cmd, err, sizeof(err)) < 0)
		return ctl_usage(c, "user", "%s", err);
	fprintf(stderr, "tlsoffctl: user %s: not changed: tlsoffd takes its user from the file it starts with\n",
		cmd.u.user.name);
	return EXIT_OK;
}
