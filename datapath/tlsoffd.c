/* tlsoffd — the tlsoff engine: terminate TLS, hand the record keys to the kernel, splice plaintext to
 * backends. See tlsoffd --help and docs/architecture.md. */
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <bpf/libbpf.h>
#include <stdarg.h>

#include "engine.h"
#include "tlsoff/cleanse_alloc.h"
#include "tlsoff/config.h"
#include "tlsoff/control.h"
#include "tlsoff/ktls.h"
#include "tlsoff/log.h"
#include "tlsoff/privdrop.h"
#include "tlsoff/tickets.h"
#include "tlsoff/version.h"


static void usage(FILE *out)
{
	fputs("usage: tlsoffd -f FILE [options]     serve the configuration in FILE\n"
	      "       tlsoffd -f FILE --check        parse and load FILE (certificates too), then exit\n"
	      "       tlsoffd --probe [-j]           report the kernel's kTLS capabilities (-j: JSON)\n"
	      "       tlsoffd --gen-ticket-key       print a new session ticket key (a line for `tickets keys FILE`)\n"
	      "       tlsoffd --version | --help\n"
	      "options:\n"
	      "  -w, --workers N          worker threads (default: one per CPU)\n"
	      "  -l, --log-level LEVEL    error|warning|notice|info|debug (default info: one line per connection)\n"
	      "      --syslog             log to syslog instead of stderr\n"
	      "      --drain-timeout S    on SIGTERM, wait up to S seconds for open connections (default 30)\n"
	      "      --control PATH       control socket for tlsoffctl (default " TLSOFF_CONTROL_PATH "; 'none': off)\n"
	      "      --control-group GRP  group owning the control socket (mode 0660; default: the daemon's)\n"
	      "      --steer MODE         bpf|incoming-cpu|off: new connections to the worker on their CPU\n"
	      "                           (default bpf; needs one worker per CPU)\n"
	      "  -u, --user USER[:GROUP]  once set up, run as USER with three capabilities (overrides the\n"
	      "                           file's `user`; see tlsoffd(8) PRIVILEGES)\n"
	      "      --takeover[=PATH]    seamless upgrade: take the listening sockets (and the control socket)\n"
	      "                           of the tlsoffd on control socket PATH (default: --control's), which\n"
	      "                           then drains and exits; SIGUSR2 makes a daemon start this itself\n",
	      out);
}

static int probe(bool json)
{
	struct ktls_caps caps;
	if (ktls_probe(&caps) < 0) {
		fprintf(stderr, "tlsoffd: cannot probe kTLS: %s\n", caps.why);
		return 1;
	}
	/* Exit 0 whether or not kTLS is there: the probe itself succeeded. */
	return ktls_caps_print(&caps, json, stdout) < 0 ? 1 : 0;
}

/* One line saying what the engine will do for kTLS on this kernel, and why. */
static void log_kernel(const struct ktls_caps *caps)
{
	if (!caps->ulp) {
		log_notice("kernel %s: kTLS unavailable (%s): every connection uses the userspace datapath",
			   caps->release, caps->why);
		return;
	}
	char list[256] = "";
	size_t n = 0;
	for (int v = 0; v < 2; v++)
		for (size_t i = 0; i < ktls_cipher_count; i++)
			if (caps->tx[v] & caps->rx[v] & (1u << i))
				n += (size_t)snprintf(list + n, sizeof(list) - n, "%sTLS1.%d/%s", n ? " " : "", 2 + v,
						      ktls_ciphers[i].name);
	log_notice("kernel %s: kTLS TX+RX for %s; rekey %s", caps->release, n ? list : "nothing",
		   caps->rekey ? "yes" : "no");
}

/* libbpf's own messages (program load failures, verifier logs) go where ours go: with --syslog, stderr
 * is nobody's. Warnings as warnings; its info and debug chatter only at debug level. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[1024];
	int lvl = level == LIBBPF_WARN ? LOG_WARNING : LOG_DEBUG;
	if (!log_enabled(lvl))
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_msg(lvl, "libbpf: %s", buf);
	return 0;
}

/* A spliced connection holds six descriptors (two sockets, two pipes): take every descriptor the hard
 * limit allows, as nginx and haproxy do, instead of failing at a soft limit of 1024. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rlim_t was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		log_info("descriptor limit raised from %llu to %llu", (unsigned long long)was,
			 (unsigned long long)rl.rlim_max);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },  { "check", no_argument, NULL, 'c' },
		{ "probe", no_argument, NULL, 'P' },       { "json", no_argument, NULL, 'j' },
		{ "workers", required_argument, NULL, 'w' }, { "log-level", required_argument, NULL, 'l' },
		{ "syslog", no_argument, NULL, 'S' },      { "drain-timeout", required_argument, NULL, 'D' },
		{ "version", no_argument, NULL, 'V' },     { "help", no_argument, NULL, 'h' },
		{ "control", required_argument, NULL, 'C' }, { "control-group", required_argument, NULL, 'G' },
		{ "steer", required_argument, NULL, 'T' },   { "gen-ticket-key", no_argument, NULL, 'K' },
		{ "takeover", optional_argument, NULL, 'U' }, { "user", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL, *takeover_path = NULL;
	char opt_user[2 * TLSOFF_NAME_MAX] = "";
	bool takeover = false;
	bool check = false, want_probe = false, json = false, use_syslog = false;
	int level = LOG_INFO, opt;
	long n;
	struct engine_opts eo = { .workers = 0, .drain_seconds = 30, .control_path = TLSOFF_CONTROL_PATH };

	/* Before OpenSSL allocates anything: every block it frees is wiped (secrets in freed SSL objects). */
	if (cleanse_alloc_install() < 0) {
		fprintf(stderr, "tlsoffd: cannot install the wiping allocator (OpenSSL allocated before main)\n");
		return 1;
	}
	while ((opt = getopt_long(argc, argv, "f:jw:l:hu:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': file = optarg; break;
		case 'c': check = true; break;
		case 'P': want_probe = true; break;
		case 'j': json = true; break;
		case 'S': use_syslog = true; break;
		case 'C': eo.control_path = strcmp(optarg, "none") ? optarg : NULL; break;
		case 'G': eo.control_group = optarg; break;
		case 'u':
			if (!optarg[0] || optarg[0] == ':' || strlen(optarg) >= sizeof(opt_user)) {
				fprintf(stderr, "tlsoffd: --user: expected USER or USER:GROUP, got '%s'\n", optarg);
				return 2;
			}
			snprintf(opt_user, sizeof(opt_user), "%s", optarg);
			break;
		case 'U':
			takeover = true;
			takeover_path = optarg;
			break;
		case 'T':
			if (!strcmp(optarg, "bpf"))
				eo.steer = STEER_BPF;
			else if (!strcmp(optarg, "incoming-cpu"))
				eo.steer = STEER_INCOMING_CPU;
			else if (!strcmp(optarg, "off"))
				eo.steer = STEER_OFF;
			else {
				fprintf(stderr, "tlsoffd: --steer: expected bpf|incoming-cpu|off, got '%s'\n", optarg);
				return 2;
			}
			break;
		case 'w':
			n = strtol(optarg, NULL, 10);
			if (n < 1 || n > 1024) {
				fprintf(stderr, "tlsoffd: --workers: expected 1-1024, got '%s'\n", optarg);
				return 2;
			}
			eo.workers = (unsigned)n;
			break;
		case 'D':
			n = strtol(optarg, NULL, 10);
			if (n < 0 || n > 86400) {
				fprintf(stderr, "tlsoffd: --drain-timeout: expected 0-86400 seconds, got '%s'\n", optarg);
				return 2;
			}
			eo.drain_seconds = (unsigned)n;
			break;
		case 'l':
			if ((level = log_level_parse(optarg)) < 0) {
				fprintf(stderr, "tlsoffd: --log-level: expected error|warning|notice|info|debug, got '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'K': {
			char key[128];
			if (tickets_gen_key(key, sizeof(key)) < 0) {
				fprintf(stderr, "tlsoffd: cannot make a ticket key\n");
				return 1;
			}
			printf("%s\n", key);
			OPENSSL_cleanse(key, sizeof(key));
			return 0;
		}
		case 'V':
			printf("tlsoffd %s (%s)\n", TLSOFF_VERSION, OpenSSL_version(OPENSSL_VERSION));
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tlsoffd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (want_probe)
		return probe(json);
	if (!file) {
		fprintf(stderr, "tlsoffd: no configuration: use -f FILE (see --help)\n");
		return 2;
	}
	if (takeover && takeover_path)
		eo.control_path = takeover_path;   /* the control socket is taken over too: it stays at its path */
	if (takeover && (check || !eo.control_path)) {
		fprintf(stderr, "tlsoffd: --takeover %s\n", check ? "and --check do not go together" :
			"needs the old daemon's control socket: --takeover=PATH or --control PATH, not none");
		return 2;
	}
	/* For SIGUSR2: the binary as it is named now (a package upgrade replaces the file: /proc/self/exe
	 * would go on naming the old, deleted one), and the arguments to start it with again. */
	static char exe[PATH_MAX];
	ssize_t exelen = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (exelen > 0) {
		exe[exelen] = '\0';
		eo.exe = exe;
	}
	eo.argv = argv;

	/* Before a private key is read: no core dump, no ptrace or /proc/PID/mem by our own user. */
	privdrop_nodump();
	log_init("tlsoffd", level, use_syslog);
	libbpf_set_print(libbpf_log);
	/* Absolute, so relative certificate paths in it resolve to absolute ones: config dump writes what
	 * runs, and that must load from anywhere. */
	char abs_file[PATH_MAX];
	if (realpath(file, abs_file))
		file = abs_file;
	struct config cfg;
	char err[TLSOFF_ERR_MAX + TLSOFF_PATH_MAX];
	if (config_load(file, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "tlsoffd: %s\n", err);
		return 1;
	}
	/* The user to become once set up: --user, else the file's `user` line. Looked up now, so that a
	 * name that does not exist fails --check and the start, not the switch. */
	struct privdrop drop;
	if (opt_user[0]) {
		char *colon = strchr(opt_user, ':');
		if (colon)
			*colon++ = '\0';
		snprintf(cfg.user, sizeof(cfg.user), "%s", opt_user);
		snprintf(cfg.group, sizeof(cfg.group), "%s", colon ? colon : "");
	}
	if (cfg.user[0]) {
		if (privdrop_resolve(cfg.user, cfg.group, &drop, err, sizeof(err)) < 0) {
			fprintf(stderr, "tlsoffd: %s\n", err);
			config_free(&cfg);
			return 1;
		}
		eo.drop = &drop;
	}
	/* An empty file is fine when frontends will arrive over the control socket (orchestration). */
	if (cfg.nfrontends == 0 && (!eo.control_path || check)) {
		fprintf(stderr, "tlsoffd: %s: no frontend configured%s\n", file,
			check ? "" : " (and no control socket to add one)");
		config_free(&cfg);
		return 1;
	}
	if (check) {   /* certificates and keys load too: the same code the engine runs */
		for (unsigned i = 0; i < cfg.nfrontends; i++) {
			struct tls_frontend *tf = tls_frontend_new(&cfg.frontends[i], true, err, sizeof(err));
			if (!tf) {
				fprintf(stderr, "tlsoffd: %s:%u: frontend %s: %s\n", file, cfg.frontends[i].line,
					cfg.frontends[i].name, err);
				config_free(&cfg);
				return 1;
			}
			tls_frontend_free(tf);
		}
		if (cfg.ticket_keys[0] && tickets_check_file(cfg.ticket_keys, err, sizeof(err)) < 0) {
			fprintf(stderr, "tlsoffd: ticket keys: %s\n", err);
			config_free(&cfg);
			return 1;
		}
		printf("%s: ok (%u frontends, %u backends)\n", file, cfg.nfrontends, cfg.nbackends);
		config_free(&cfg);
		return 0;
	}

	raise_nofile();
	/* The TLS 1.3 secrets kept for KeyUpdate live in OpenSSL's secure heap: locked in RAM, out of core
	 * dumps. 4 MiB holds ~30 000 connections' worth; beyond that they fall back to the normal heap. */
	if (CRYPTO_secure_malloc_init(4 << 20, 32) != 1)
		log_notice("no secure heap (mlock refused? RLIMIT_MEMLOCK): KeyUpdate secrets stay in normal memory");
	struct ktls_caps caps;
	if (ktls_probe(&caps) < 0) {
		log_warn("cannot probe kTLS (%s): using the userspace datapath", caps.why);
		memset(&caps, 0, sizeof(caps));
	}
	log_kernel(&caps);
	if (!eo.workers) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		eo.workers = cpus > 0 ? (unsigned)cpus : 1;
	}
	eo.config_path = file;
	struct takeover tk;
	if (takeover) {
		/* After the configuration loaded (a broken file takes nothing over), before anything binds. */
		if (takeover_fetch(eo.control_path, &tk, err, sizeof(err)) < 0) {
			log_err("%s", err);
			config_free(&cfg);
			return 1;
		}
		eo.takeover = &tk;
	}
	int rc = engine_run(&cfg, &eo, &caps);
	if (takeover)
		takeover_release(&tk, true);
	config_free(&cfg);
	return rc;
}
