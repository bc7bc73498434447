/* client_hello.h — parse a TLS ClientHello from a connection's first bytes (read with MSG_PEEK), so an
 * SNI-routed passthrough can pick a backend before forwarding those bytes untouched.
 *
 * Call it again with everything peeked so far after each read: it reports CH_NEED_MORE until the whole
 * hello is there, and rejects anything that can not become a valid hello as early as it can tell. It
 * reads only buf[0..len), never recurses, and allocates at most CLIENT_HELLO_MAX (only when the hello is
 * split over several records). */
#ifndef TLSOFF_CLIENT_HELLO_H
#define TLSOFF_CLIENT_HELLO_H

#include <stddef.h>
#include <stdint.h>

#define CLIENT_HELLO_MAX (64 * 1024)   /* we never buffer more than this waiting for a hello */

enum ch_result { CH_COMPLETE, CH_NEED_MORE, CH_INVALID };

/* Each result fills only its own fields; the others are zero. */
struct client_hello {
	char sni[256];          /* host_name from server_name, lower-cased; "" when the extension is absent */
	char alpn[128];         /* ALPN protocols as "h2,http/1.1"; "" when absent. Whole names only: those
	                         * that do not fit are dropped; bytes other than printable ASCII and ','
	                         * are shown as '?' */
	uint16_t legacy_version;    /* ClientHello.legacy_version (0x0303 ...) */
	uint16_t max_version;       /* highest of supported_versions if present, else legacy_version */
	size_t bytes;           /* bytes of the records that carried the hello (what was parsed) */
	size_t need;            /* CH_NEED_MORE: total bytes needed at least to make progress
	                         * (> len, and <= CLIENT_HELLO_MAX) */
	const char *why;        /* CH_INVALID: a short human-readable reason (static string) */
};

/* Parse the TLS records at buf[0..len): one or more handshake records (content type 22) carrying a
 * complete ClientHello handshake message (which may be split over several records, and a record may be
 * split over several reads). Bytes after the last record of the hello are ignored. */
enum ch_result client_hello_parse(const uint8_t *buf, size_t len, struct client_hello *out);

#endif
