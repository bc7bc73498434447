/* control.h — the control protocol between tlsoffctl (or any orchestration client) and tlsoffd.
 * The single source of truth: message types, attributes, enums and the version. docs/control-protocol.md
 * explains it in prose.
 *
 * Transport: a Unix stream socket (default TLSOFF_CONTROL_PATH). Every message is netlink-format, exactly as
 * on a netlink socket: struct nlmsghdr, then struct tlsoff_ctlhdr (like genlmsghdr), then attributes
 * (struct nlattr, 4-byte aligned, nested where noted). nlmsg_len frames messages on the stream.
 *
 *   request   nlmsg_type = TLSOFF_CMD_*, NLM_F_REQUEST | NLM_F_ACK, one nlmsg_seq per request
 *   ack       NLMSG_ERROR: struct nlmsgerr { error = 0 or -errno, the request's header } and, when the
 *             daemon has something to say, NLM_F_ACK_TLVS with NLMSGERR_ATTR_MSG = a human-readable string
 *             (the extended ack). NLM_F_CAPPED is always set: the request's payload is not echoed.
 *   dump      a request with NLM_F_DUMP: zero or more NLM_F_MULTI messages of the same type, each one object,
 *             then NLMSG_DONE (payload: int 0). A dump that fails ends with NLMSG_ERROR instead.
 *
 * Every attribute is checked against a strict policy: an attribute the daemon does not know (type 0, above
 * the maximum, or without a policy entry), a wrong length or an unterminated string is refused with EINVAL
 * and a message naming it. A request whose tlsoff_ctlhdr.version differs from TLSOFF_CTL_VERSION is refused
 * with EPROTONOSUPPORT.
 */
#ifndef TLSOFF_CONTROL_H
#define TLSOFF_CONTROL_H

#include <stdint.h>
#include <linux/netlink.h>

#define TLSOFF_CTL_VERSION   1
#define TLSOFF_CONTROL_PATH  "/run/tlsoff/control"
#define TLSOFF_CTL_MSG_MAX   (1 << 20)   /* the largest message either side accepts */

struct tlsoff_ctlhdr {
	uint8_t version;                 /* TLSOFF_CTL_VERSION */
	uint8_t reserved[3];
};

/* nlmsg_type. Requests that change something are acked; *_GET are dumps (NLM_F_DUMP). */
enum tlsoff_cmd {
	TLSOFF_CMD_UNSPEC = NLMSG_MIN_TYPE,
	TLSOFF_CMD_FRONTEND_ADD,         /* A_FRONTEND */
	TLSOFF_CMD_FRONTEND_DEL,         /* A_NAME */
	TLSOFF_CMD_FRONTEND_GET,         /* dump: A_FRONTEND per frontend; optional A_NAME filter */
	TLSOFF_CMD_BACKEND_ADD,          /* A_BACKEND */
	TLSOFF_CMD_BACKEND_DEL,          /* A_NAME */
	TLSOFF_CMD_BACKEND_GET,          /* dump: A_BACKEND per backend; optional A_NAME filter */
	TLSOFF_CMD_SERVER_ADD,           /* A_NAME (backend), A_SERVER (HOST:PORT) */
	TLSOFF_CMD_SERVER_DEL,           /* same */
	TLSOFF_CMD_SERVER_DRAIN,         /* same: no new connections to it, open ones finish */
	TLSOFF_CMD_SERVER_ENABLE,        /* same: takes new connections again */
	TLSOFF_CMD_CERT_ADD,             /* A_NAME (frontend), A_CERT */
	TLSOFF_CMD_CERT_REPLACE,         /* A_NAME, A_CERT (CERT_OLD picks the one replaced, else same names) */
	TLSOFF_CMD_CERT_DEL,             /* A_NAME, A_CERT (CERT_CHAIN) */
	TLSOFF_CMD_CERT_GET,             /* dump: A_CERT per certificate; optional A_NAME filter */
	TLSOFF_CMD_CONN_GET,             /* dump: A_CONN per connection; optional A_FILTER */
	TLSOFF_CMD_CONN_KILL,            /* A_ID */
	TLSOFF_CMD_STATS_GET,            /* dump: one message, A_COUNTER... */
	TLSOFF_CMD_STATUS_GET,           /* dump: one message, A_STATUS */
	TLSOFF_CMD_OFFLOAD_GET,          /* dump: A_LINK per netdev; optional A_NAME (device) filter */
	TLSOFF_CMD_OFFLOAD_SET,          /* A_NAME (device), A_FEATURE (FEAT_NAME, FEAT_WANTED) */
	TLSOFF_CMD_CONFIG_GET,           /* dump: one A_CONFIG_LINE per message, in order */
	TLSOFF_CMD_TICKETS_SET,          /* A_NAME: the session ticket key file ("" = random in-process keys) */
	TLSOFF_CMD_METRICS_SET,          /* A_NAME: the Prometheus endpoint ADDR:PORT ("" = metrics off) */
	/* Seamless upgrade (docs/architecture.md "Upgrading"): a new tlsoffd asks the running one for its
	 * listening sockets. The answer is a dump, one A_LISTENER per socket, each message carrying that
	 * socket's descriptor as SCM_RIGHTS ancillary data; the old daemon keeps accepting meanwhile. */
	TLSOFF_CMD_TAKEOVER,             /* dump: A_LISTENER per listening socket (+ its descriptor) */
	TLSOFF_CMD_TAKEOVER_DONE,        /* acked: the sender serves on those sockets now; the old daemon stops
					  * accepting, drains its connections (--drain-timeout) and exits 0 */
	__TLSOFF_CMD_MAX
};

/* Top-level attributes. */
enum tlsoff_attr {
	TLSOFF_A_UNSPEC,
	TLSOFF_A_NAME,                   /* string: the object a request is about */
	TLSOFF_A_FRONTEND,               /* nest: TLSOFF_FE_* */
	TLSOFF_A_BACKEND,                /* nest: TLSOFF_BE_* */
	TLSOFF_A_SERVER,                 /* string HOST:PORT */
	TLSOFF_A_CERT,                   /* nest: TLSOFF_CERT_* */
	TLSOFF_A_CONN,                   /* nest: TLSOFF_CONN_* */
	TLSOFF_A_FILTER,                 /* nest: TLSOFF_FILTER_* */
	TLSOFF_A_ID,                     /* u64: a connection id */
	TLSOFF_A_COUNTER,                /* nest: TLSOFF_COUNTER_* (repeated) */
	TLSOFF_A_STATUS,                 /* nest: TLSOFF_STATUS_* */
	TLSOFF_A_LINK,                   /* nest: TLSOFF_LINK_* */
	TLSOFF_A_FEATURE,                /* nest: TLSOFF_FEAT_* */
	TLSOFF_A_CONFIG_LINE,            /* string: one line of `config dump` */
	TLSOFF_A_LISTENER,               /* nest: TLSOFF_LSN_* (takeover) */
	__TLSOFF_A_MAX
};
#define TLSOFF_A_MAX (__TLSOFF_A_MAX - 1)

/* A frontend (as `frontend add` takes it). */
enum tlsoff_fe_attr {
	TLSOFF_FE_UNSPEC,
	TLSOFF_FE_NAME,                  /* string */
	TLSOFF_FE_LISTEN,                /* string ADDR:PORT */
	TLSOFF_FE_CERT,                  /* nest: TLSOFF_CERT_CHAIN + TLSOFF_CERT_KEY (repeated, first = default) */
	TLSOFF_FE_BACKEND,               /* string */
	TLSOFF_FE_ALPN,                  /* string "h2,http/1.1" */
	TLSOFF_FE_TLS_MIN,               /* string "1.2" | "1.3" */
	TLSOFF_FE_DATAPATH,              /* u32 enum tlsoff_datapath: 0 auto, 1 splice, 2 userspace */
	TLSOFF_FE_HANDSHAKE_TIMEOUT,     /* u32 ms */
	TLSOFF_FE_IDLE_TIMEOUT,          /* u32 ms */
	TLSOFF_FE_MAX_CONNS,             /* u32, 0 = unlimited */
	TLSOFF_FE_CONNS,                 /* u32, in dumps: open connections */
	TLSOFF_FE_MODE,                  /* u32 enum tlsoff_mode: 0 tls, 1 plain, 2 passthrough */
	TLSOFF_FE_ROUTE,                 /* nest: TLSOFF_ROUTE_* (repeated): passthrough SNI routes, in order */
	TLSOFF_FE_CLIENT_CA,             /* string path: CA of client certificates (mTLS); absent = none asked */
	TLSOFF_FE_CLIENT_VERIFY,         /* u32 enum tlsoff_client_verify: 1 required, 2 optional */
	TLSOFF_FE_NIC_OFFLOAD,           /* u32 enum tlsoff_nic_offload: 0 off, 1 prefer (TLS frontends) */
	__TLSOFF_FE_MAX
};
#define TLSOFF_FE_MAX (__TLSOFF_FE_MAX - 1)

enum tlsoff_route_attr {
	TLSOFF_ROUTE_UNSPEC,
	TLSOFF_ROUTE_SNI,                /* string: "example.com" or "*.example.com" */
	TLSOFF_ROUTE_BACKEND,            /* string */
	__TLSOFF_ROUTE_MAX
};
#define TLSOFF_ROUTE_MAX (__TLSOFF_ROUTE_MAX - 1)

/* A backend. */
enum tlsoff_be_attr {
	TLSOFF_BE_UNSPEC,
	TLSOFF_BE_NAME,                  /* string */
	TLSOFF_BE_SERVER,                /* nest: TLSOFF_SRV_* (repeated, in order) */
	TLSOFF_BE_BALANCE,               /* u32: 0 roundrobin, 1 leastconn */
	TLSOFF_BE_PROXY_PROTOCOL,        /* u32: 0 off, 2 PROXY v2 */
	TLSOFF_BE_CONNECT_TIMEOUT,       /* u32 ms */
	TLSOFF_BE_TLS,                   /* flag: re-encrypt to the servers (TLS client) */
	TLSOFF_BE_TLS_CA,                /* string path: trust anchors ("" / absent = system store) */
	TLSOFF_BE_TLS_VERIFY,            /* u32: 1 verify the server (default), 0 `verify off` */
	TLSOFF_BE_TLS_SNI,               /* string: SNI sent and name verified */
	TLSOFF_BE_TLS_CERT,              /* string path: client certificate chain */
	TLSOFF_BE_TLS_KEY,               /* string path: its key */
	__TLSOFF_BE_MAX
};
#define TLSOFF_BE_MAX (__TLSOFF_BE_MAX - 1)

enum tlsoff_srv_attr {
	TLSOFF_SRV_UNSPEC,
	TLSOFF_SRV_ADDR,                 /* string HOST:PORT */
	TLSOFF_SRV_DRAINED,              /* flag */
	TLSOFF_SRV_ACTIVE,               /* u32, in dumps: open connections to it */
	__TLSOFF_SRV_MAX
};
#define TLSOFF_SRV_MAX (__TLSOFF_SRV_MAX - 1)

/* A certificate of a frontend. */
enum tlsoff_cert_attr {
	TLSOFF_CERT_UNSPEC,
	TLSOFF_CERT_CHAIN,               /* string path (as the daemon resolved it) */
	TLSOFF_CERT_KEY,                 /* string path */
	TLSOFF_CERT_OLD,                 /* string path: cert replace, the chain to replace */
	TLSOFF_CERT_FRONTEND,            /* string, in dumps */
	TLSOFF_CERT_NAME,                /* string, in dumps: a DNS name it serves (repeated) */
	TLSOFF_CERT_NOT_AFTER,           /* u64, in dumps: expiry, seconds since the epoch */
	TLSOFF_CERT_SUBJECT,             /* string, in dumps */
	TLSOFF_CERT_DEFAULT,             /* flag, in dumps: served when no SNI matches */
	TLSOFF_CERT_OCSP,                /* string path: the DER OCSP response stapled for it (cert rows) */
	TLSOFF_CERT_OCSP_STATE,          /* string, in dumps: stapling, stale, revoked, mismatch, invalid,
					  * unreadable (or absent: no ocsp file) */
	TLSOFF_CERT_OCSP_WHY,            /* string, in dumps: the reason when not stapling */
	TLSOFF_CERT_OCSP_NEXT_UPDATE,    /* u64, in dumps: the response's nextUpdate (stale since), epoch s */
	__TLSOFF_CERT_MAX
};
#define TLSOFF_CERT_MAX (__TLSOFF_CERT_MAX - 1)

/* One connection (conn show). Strings are empty when not known yet. */
enum tlsoff_conn_attr {
	TLSOFF_CONN_UNSPEC,
	TLSOFF_CONN_ID,                  /* u64, daemon-wide unique */
	TLSOFF_CONN_FRONTEND,            /* string */
	TLSOFF_CONN_BACKEND,             /* string */
	TLSOFF_CONN_CLIENT,              /* string ADDR:PORT */
	TLSOFF_CONN_SERVER,              /* string HOST:PORT, empty before the backend is chosen */
	TLSOFF_CONN_STATE,               /* string: handshake, connect, relay, linger */
	TLSOFF_CONN_VERSION,             /* string "TLSv1.3" */
	TLSOFF_CONN_CIPHER,              /* string, OpenSSL's name */
	TLSOFF_CONN_ALPN,                /* string */
	TLSOFF_CONN_SNI,                 /* string */
	TLSOFF_CONN_DATAPATH,            /* string: splice, userspace, or "" during the handshake */
	TLSOFF_CONN_WHY,                 /* string: why not offloaded */
	TLSOFF_CONN_KTLS_TX,             /* string: sw, hw, hw-record, none (sock_diag INET_ULP_INFO_TLS) */
	TLSOFF_CONN_KTLS_RX,             /* string */
	TLSOFF_CONN_BYTES_IN,            /* u64: client -> backend plaintext */
	TLSOFF_CONN_BYTES_OUT,           /* u64: backend -> client plaintext */
	TLSOFF_CONN_AGE_MS,              /* u64 */
	TLSOFF_CONN_REKEYS,              /* u32 */
	TLSOFF_CONN_WORKER,              /* u32 */
	TLSOFF_CONN_NIC_OFFLOAD,         /* string: the nic-offload decision ("preferred TLS 1.2 AES-GCM for eth0",
					  * "not applicable: egress lo has no tls-hw-tx-offload"), "" when off */
	TLSOFF_CONN_BACKEND_TLS,         /* string: the backend leg, "ktls" or "userspace"; "" = plain TCP */
	TLSOFF_CONN_BACKEND_VERSION,     /* string "TLSv1.3": the backend leg's */
	TLSOFF_CONN_BACKEND_CIPHER,      /* string: the backend leg's */
	__TLSOFF_CONN_MAX
};
#define TLSOFF_CONN_MAX (__TLSOFF_CONN_MAX - 1)

enum tlsoff_filter_attr {
	TLSOFF_FILTER_UNSPEC,
	TLSOFF_FILTER_FRONTEND,          /* string */
	TLSOFF_FILTER_BACKEND,           /* string */
	TLSOFF_FILTER_DATAPATH,          /* string: splice | userspace */
	__TLSOFF_FILTER_MAX
};
#define TLSOFF_FILTER_MAX (__TLSOFF_FILTER_MAX - 1)

/* A named counter: the daemon's own ("accepted") or the kernel's /proc/net/tls_stat ("TlsTxSw"). */
enum tlsoff_counter_attr {
	TLSOFF_COUNTER_UNSPEC,
	TLSOFF_COUNTER_NAME,             /* string */
	TLSOFF_COUNTER_VALUE,            /* u64 */
	TLSOFF_COUNTER_KERNEL,           /* flag: from /proc/net/tls_stat */
	__TLSOFF_COUNTER_MAX
};
#define TLSOFF_COUNTER_MAX (__TLSOFF_COUNTER_MAX - 1)

enum tlsoff_status_attr {
	TLSOFF_STATUS_UNSPEC,
	TLSOFF_STATUS_VERSION,           /* string: tlsoffd version */
	TLSOFF_STATUS_PID,               /* u32 */
	TLSOFF_STATUS_UPTIME_S,          /* u64 */
	TLSOFF_STATUS_WORKERS,           /* u32 */
	TLSOFF_STATUS_GENERATION,        /* u32: configuration generation */
	TLSOFF_STATUS_CONNS,             /* u32: open connections */
	TLSOFF_STATUS_KERNEL,            /* string: uname -r */
	TLSOFF_STATUS_TLS_ULP,           /* u8: 1 when the TLS ULP works */
	TLSOFF_STATUS_TLS_ULP_WHY,       /* string: why not */
	TLSOFF_STATUS_CIPHER,            /* nest: TLSOFF_CIPHER_* (repeated): what the kernel accepts */
	TLSOFF_STATUS_REKEY,             /* u8: TLS 1.3 KeyUpdate with kTLS */
	TLSOFF_STATUS_SOCKMAP,           /* u8: BPF sockmap usable */
	TLSOFF_STATUS_CONFIG_PATH,       /* string */
	TLSOFF_STATUS_STEERING,          /* string: how new connections reach workers: bpf, incoming-cpu, off (why) */
	TLSOFF_STATUS_SOCKMAP_WHY,       /* string: why the sockmap program cannot be loaded ("" when it can) */
	TLSOFF_STATUS_SOCKMAP_CUT,       /* u8: the verdict cuts off retransmitted bytes the kernel hands it twice */
	__TLSOFF_STATUS_MAX
};
#define TLSOFF_STATUS_MAX (__TLSOFF_STATUS_MAX - 1)

enum tlsoff_cipher_attr {
	TLSOFF_CIPHER_UNSPEC,
	TLSOFF_CIPHER_NAME,              /* string "AES-128-GCM" */
	TLSOFF_CIPHER_TLS,               /* string "1.2" | "1.3" */
	TLSOFF_CIPHER_TX,                /* u8 */
	TLSOFF_CIPHER_RX,                /* u8 */
	__TLSOFF_CIPHER_MAX
};
#define TLSOFF_CIPHER_MAX (__TLSOFF_CIPHER_MAX - 1)

/* A netdev and its TLS offload features (ethtool netlink). */
enum tlsoff_link_attr {
	TLSOFF_LINK_UNSPEC,
	TLSOFF_LINK_NAME,                /* string */
	TLSOFF_LINK_IFINDEX,             /* u32 */
	TLSOFF_LINK_UP,                  /* u8: IFF_UP */
	TLSOFF_LINK_FEATURE,             /* nest: TLSOFF_FEAT_* (repeated) */
	__TLSOFF_LINK_MAX
};
#define TLSOFF_LINK_MAX (__TLSOFF_LINK_MAX - 1)

enum tlsoff_feat_attr {
	TLSOFF_FEAT_UNSPEC,
	TLSOFF_FEAT_NAME,                /* string: tls-hw-tx-offload, tls-hw-rx-offload, tls-hw-record */
	TLSOFF_FEAT_HW,                  /* u8: the device can do it */
	TLSOFF_FEAT_WANTED,              /* u8: requested (offload set writes this) */
	TLSOFF_FEAT_ACTIVE,              /* u8: in effect */
	TLSOFF_FEAT_FIXED,               /* u8: cannot be changed */
	__TLSOFF_FEAT_MAX
};
#define TLSOFF_FEAT_MAX (__TLSOFF_FEAT_MAX - 1)

/* One listening socket handed over by CMD_TAKEOVER; its descriptor rides in the same message (SCM_RIGHTS). */
enum tlsoff_lsn_attr {
	TLSOFF_LSN_UNSPEC,
	TLSOFF_LSN_KIND,                 /* u32 enum tlsoff_lsn_kind */
	TLSOFF_LSN_FRONTEND,             /* string: the frontend it serves in the old daemon (frontend kind) */
	TLSOFF_LSN_LISTEN,               /* string ADDR:PORT as configured (the socket's own address decides) */
	TLSOFF_LSN_WORKER,               /* u32: the old daemon's worker that accepts on it (its reuseport slot) */
	TLSOFF_LSN_PID,                  /* u32: the old daemon's pid (SO_PEERCRED names whoever called listen()
					  * on the control socket: after one takeover, not the daemon answering) */
	__TLSOFF_LSN_MAX
};
#define TLSOFF_LSN_MAX (__TLSOFF_LSN_MAX - 1)

enum tlsoff_lsn_kind {
	TLSOFF_LSN_KIND_FRONTEND,        /* a TCP listener of a frontend (one per worker: a SO_REUSEPORT group) */
	TLSOFF_LSN_KIND_CONTROL,         /* the control socket itself: its path never disappears */
};

#endif
