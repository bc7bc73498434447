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
