/* config.h — the command grammar shared by `tlsoffd -f FILE`, `tlsoffctl` and `tlsoffctl -batch`.
 *
 *   backend add NAME server HOST:PORT [server HOST:PORT ...] [balance roundrobin|leastconn]
 *               [proxy-protocol v2] [connect-timeout MS]
 *               [tls [ca FILE] [verify on|off] [sni NAME] [cert CHAIN.pem key KEY.pem]]
 *   frontend add NAME listen ADDR:PORT cert CHAIN.pem key KEY.pem [ocsp RESPONSE.der]
 *               [cert CHAIN.pem key KEY.pem [ocsp RESPONSE.der] ...] backend NAME [alpn h2,http/1.1] [tls-min 1.2|1.3] [datapath auto|splice|userspace]
 *               [handshake-timeout MS] [idle-timeout MS] [max-conns N] [nic-offload off|prefer]
 *               [client-ca CA.pem [client-verify required|optional]]
 *   frontend add NAME listen ADDR:PORT plain backend NAME [idle-timeout MS] [max-conns N]
 *   frontend add NAME listen ADDR:PORT passthrough [sni PATTERN=BACKEND ...] [default BACKEND]
 *               [handshake-timeout MS] [idle-timeout MS] [max-conns N]
 *   backend del NAME | frontend del NAME
 *   server add|del|drain|enable BACKEND HOST:PORT
 *   cert add FRONTEND cert CHAIN.pem key KEY.pem [ocsp RESPONSE.der]
 *   cert replace FRONTEND cert CHAIN.pem key KEY.pem [ocsp RESPONSE.der] [old OLDCHAIN.pem]
 *   cert del FRONTEND CHAIN.pem
 *   tickets keys FILE
 *   metrics listen ADDR:PORT | metrics off
 *
 * `ocsp RESPONSE.der` follows its certificate's key: a DER OCSP response stapled while valid (ocsp.h).
 *
 * nic-offload prefer (default off): when a client's route leaves through a netdev whose tls-hw-tx-offload
 * is active, and the client offers TLS 1.2 with an AES-GCM suite, serve it TLS 1.2 AES-GCM — what mainline
 * NIC TLS offload accepts — instead of TLS 1.3; every other client is left alone (nic_pref.h). No
 * `require`: the kernel falls back to software silently (a full offload table, a rerouted flow), so the
 * daemon could never promise it, and refusing clients that lack TLS 1.2 AES-GCM would break handshakes.
 *
 * `tls` on a backend re-encrypts: tlsoffd is a TLS client (TLS >= 1.2) to each server and, where the kernel
 * can take both legs, splices plaintext between two kTLS sockets. verify is on unless `verify off` is written:
 * the server's chain against `ca FILE` (or the system's default store) and its name against `sni NAME`, else
 * the host part of the server's address (a name, or an IP address matched against IP SANs). `sni` is also the
 * SNI sent (an IP address sends none). `cert`/`key`: a client certificate for servers that ask for one.
 *
 * One parser, table-driven (struct cmd_opt rows), for a file and for a single command line. Errors are a
 * human-readable message; config_load prefixes "FILE:LINE: ". Nothing here opens sockets or certificates:
 * the daemon does that after the whole file parsed, so a broken file starts nothing.
 */
#ifndef TLSOFF_CONFIG_H
#define TLSOFF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define TLSOFF_NAME_MAX      64
#define TLSOFF_MAX_SERVERS   64
#define TLSOFF_MAX_CERTS     16
#define TLSOFF_ALPN_MAX      128   /* wire format: length-prefixed protocol names */
#define TLSOFF_ERR_MAX       256
#define TLSOFF_PATH_MAX      1024
#define TLSOFF_MAX_ROUTES    64
#define TLSOFF_SNI_MAX       256

struct tlsoff_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[80];                /* as written: "127.0.0.1:8443", "[::1]:443", "backend.local:80" */
};

enum tlsoff_balance { BALANCE_ROUNDROBIN, BALANCE_LEASTCONN };
enum tlsoff_datapath { DATAPATH_AUTO, DATAPATH_SPLICE, DATAPATH_USERSPACE,
		      DATAPATH_SOCKMAP /* chosen by plain/passthrough frontends, not a configuration word */ };
/* tls: terminate TLS here; plain: TCP both ways, spliced in the kernel (sockmap); passthrough: TLS not
 * decrypted here, routed by the ClientHello's SNI, then spliced in the kernel like plain. */
enum tlsoff_mode { MODE_TLS, MODE_PLAIN, MODE_PASSTHROUGH };
/* Client certificates (mTLS), TLS frontends with client-ca only. required: a client without a certificate
 * that verifies against client-ca is refused in the handshake; optional: one is asked for, and the result
 * (none, verified, or the verify error) goes to the log and the PROXY v2 header, the connection goes on. */
enum tlsoff_client_verify { CLIENT_VERIFY_NONE, CLIENT_VERIFY_REQUIRED, CLIENT_VERIFY_OPTIONAL };
/* nic-offload: steer clients routed through a NIC with TLS offload to TLS 1.2 AES-GCM (nic_pref.h). */
enum tlsoff_nic_offload { NIC_OFFLOAD_OFF, NIC_OFFLOAD_PREFER };

struct sni_route {
	char pattern[TLSOFF_SNI_MAX];   /* "example.com" or "*.example.com" */
	char backend[TLSOFF_NAME_MAX];
};

struct backend_conf {
	char name[TLSOFF_NAME_MAX];
	struct tlsoff_addr servers[TLSOFF_MAX_SERVERS];
	unsigned nservers;
	enum tlsoff_balance balance;
	unsigned proxy_protocol;      /* 0 = off, 2 = PROXY v2 */
	unsigned connect_timeout_ms;
	uint64_t drained;             /* bit i: servers[i] takes no new connections (server drain) */
	unsigned line;                /* where it was defined (0: not from a file) */
	/* re-encryption (`tls`): 0 = plain TCP to the servers */
	int tls;
	int tls_verify;               /* 1 (default) or 0 (`verify off`) */
	char tls_ca[TLSOFF_PATH_MAX];     /* "" = the system's default trust store */
	char tls_sni[TLSOFF_SNI_MAX];     /* "" = the host part of each server's address */
	char tls_cert[TLSOFF_PATH_MAX], tls_key[TLSOFF_PATH_MAX];   /* client certificate, "" = none */
};

struct cert_conf {
	char chain[TLSOFF_PATH_MAX];
	char key[TLSOFF_PATH_MAX];
	char ocsp[TLSOFF_PATH_MAX];   /* DER OCSP response stapled for this certificate ("" = none) */
};

struct frontend_conf {
	char name[TLSOFF_NAME_MAX];
	struct tlsoff_addr listen;
	enum tlsoff_mode mode;
	struct sni_route routes[TLSOFF_MAX_ROUTES]; /* passthrough: exact patterns win over wildcards */
	unsigned nroutes;
	struct cert_conf certs[TLSOFF_MAX_CERTS];   /* the first is the default (no SNI match) */
	unsigned ncerts;
	char backend[TLSOFF_NAME_MAX];              /* passthrough: the default ("" = refuse unrouted names) */
	uint8_t alpn[TLSOFF_ALPN_MAX];              /* wire format, as SSL_select_next_proto wants */
	unsigned alpn_len;
	int tls_min;                                /* TLS1_2_VERSION or TLS1_3_VERSION */
	enum tlsoff_datapath datapath;
	unsigned handshake_timeout_ms, idle_timeout_ms;
	unsigned max_conns;                         /* 0 = unlimited */
	unsigned line;
	char client_ca[TLSOFF_PATH_MAX];            /* CA bundle client certificates must chain to ("" = none) */
	int client_verify;                          /* enum tlsoff_client_verify; NONE exactly when no client_ca */
	int nic_offload;                            /* enum tlsoff_nic_offload */
};

enum cmd_object { CMD_BACKEND, CMD_FRONTEND, CMD_SERVER, CMD_CERT, CMD_TICKETS, CMD_METRICS,
		  CMD_USER /* user NAME [group GROUP]: read at start only */ };
enum cmd_verb { CMD_ADD, CMD_DEL, CMD_DRAIN, CMD_ENABLE, CMD_REPLACE, CMD_SET /* tickets keys, metrics listen|off */ };

struct cmd {
	enum cmd_object object;
	enum cmd_verb verb;
	union {
		struct backend_conf backend;
		struct frontend_conf frontend;
		char name[TLSOFF_NAME_MAX];           /* backend/frontend del */
		struct {
			char backend[TLSOFF_NAME_MAX];
			struct tlsoff_addr addr;
		} server;
		struct {
			char frontend[TLSOFF_NAME_MAX];
			struct cert_conf cert;        /* del: only chain */
			char old[TLSOFF_PATH_MAX];    /* replace: the chain replaced ("" = the same path) */
		} cert;
		struct {
			char keys[TLSOFF_PATH_MAX];   /* tickets keys FILE */
		} tickets;
		struct tlsoff_addr metrics;           /* metrics listen ADDR:PORT (text "": metrics off) */
		struct {
			char name[TLSOFF_NAME_MAX];   /* user NAME */
			char group[TLSOFF_NAME_MAX];  /* ... group GROUP ("" = the user's primary group) */
		} user;
	} u;
};

struct config {
	struct backend_conf *backends;
	unsigned nbackends;
	struct frontend_conf *frontends;
	unsigned nfrontends;
	char ticket_keys[TLSOFF_PATH_MAX];   /* session ticket keys shared by a fleet; "" = random in-process keys */
	struct tlsoff_addr metrics;          /* Prometheus endpoint; text "" = none */
	char user[TLSOFF_NAME_MAX];          /* run as this user once set up ("" = stay as started) */
	char group[TLSOFF_NAME_MAX];         /* ... and group ("" = the user's primary group) */
};

/* Defaults applied by cmd_parse when an option is absent. */
#define TLSOFF_DEFAULT_CONNECT_TIMEOUT_MS   5000
#define TLSOFF_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define TLSOFF_DEFAULT_IDLE_TIMEOUT_MS      300000

/* Split a line into words (whitespace; '#' starts a comment; "double quotes" group, \" escapes).
 * Returns the word count, or -1 with err set (unterminated quote, too many words). Words point into line,
 * which is modified. */
int cmd_split(char *line, char **argv, int max, char *err, size_t errlen);

/* Parse one command (argv without the program name). Returns 0, or -1 with err set. */
int cmd_parse(int argc, char **argv, struct cmd *out, char *err, size_t errlen);

/* Apply a parsed command to a configuration (add/del, names unique, listen addresses unique). */
int config_apply(struct config *cfg, const struct cmd *c, char *err, size_t errlen);

/* Check cross references (every frontend's backend exists). Returns 0 or -1 with err set. */
int config_check(const struct config *cfg, char *err, size_t errlen);

/* Load a whole file: every line parsed and applied, then config_check. Errors are "FILE:LINE: message".
 * On error *cfg is left empty. */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen);
/* The same from an open stream; path names it in messages and anchors relative paths (the fuzzer feeds
 * it from memory: tests/fuzz/config.c). */
int config_load_stream(FILE *f, const char *path, struct config *cfg, char *err, size_t errlen);

void config_free(struct config *cfg);

/* A deep copy (dst is overwritten). Returns 0 or -1 (out of memory). */
int config_copy(struct config *dst, const struct config *src);

/* The configuration as command lines that config_load and tlsoffctl -batch accept and that rebuild it:
 * line(text, arg) is called once per line (no newline). Every option is written out, defaults included,
 * so a dump of the reloaded configuration is identical. */
void config_format(const struct config *cfg, void (*line)(const char *text, void *arg), void *arg);

/* ALPN between "h2,http/1.1" and the wire format. */
int tlsoff_alpn_parse(const char *text, uint8_t *out, unsigned *len, char *err, size_t errlen);
void tlsoff_alpn_format(const uint8_t *wire, unsigned len, char *out, size_t outlen);

/* Word tables shared with tlsoffctl's output: "roundrobin", "1.3", "splice" ... */
const char *tlsoff_balance_name(int balance);
const char *tlsoff_datapath_name(int datapath);
const char *tlsoff_tls_min_name(int tls_min);
const char *tlsoff_mode_name(int mode);           /* "tls", "plain", "passthrough" */
const char *tlsoff_client_verify_name(int v);     /* "none", "required", "optional" */
const char *tlsoff_nic_offload_name(int mode);    /* "off", "prefer" */

/* Passthrough: the backend for an SNI host name (exact patterns first, then "*." ones, then the default);
 * NULL when nothing matches and there is no default. */
const char *tlsoff_route(const struct frontend_conf *f, const char *sni);

/* Parse "HOST:PORT", "[V6]:PORT" (numeric hosts, or names resolved with getaddrinfo when resolve). */
int tlsoff_addr_parse(const char *text, bool resolve, struct tlsoff_addr *out, char *err, size_t errlen);

#endif
