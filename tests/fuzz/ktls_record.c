/* libFuzzer harness for the records a kTLS socket passes up (datapath/ktls_record.c: ktls_record_classify,
 * what the splice relay does with a record that is not application data: relay.c control_record).
 * Input: byte 0 = content type, byte 1 bit 0 = from the server (a re-encrypted backend), the rest is the
 * record's plaintext. The contracts, checked from the record's bytes:
 *   - the verdict follows the content type: 23 data, 21 alert (close_notify exactly when the description
 *     is 0), 22 handshake, anything else unknown;
 *   - a KeyUpdate verdict only for a record that ends with a whole KeyUpdate message (24, length 1,
 *     value 0 or 1 = the verdict's update_requested), preceded only by whole NewSessionTickets from a server;
 *   - tickets are only dropped from a server, and only when the record is whole NewSessionTickets: a
 *     KeyUpdate can never hide behind them (the relay would lose the key change and fail on a bad MAC);
 *   - cutting the last byte off never yields a KeyUpdate (the key must not change on half a message). */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "tlsoff/ktls_record.h"

/* Whole handshake messages of type `only` from buf[0..len); 1 when all are, 0 otherwise. */
static int all_messages_of(const uint8_t *buf, size_t len, uint8_t only)
{
	while (len) {
		if (len < 4 || buf[0] != only)
			return 0;
		size_t body = ((size_t)buf[1] << 16) | ((size_t)buf[2] << 8) | buf[3];
		if (body > len - 4)
			return 0;
		buf += 4 + body;
		len -= 4 + body;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 2 + 16384 + 256)   /* one record's plaintext at most */
		return 0;
	uint8_t type = data[0];
	bool server = data[1] & 1;
	const uint8_t *rec = data + 2;
	size_t len = size - 2;
	/* a copy of exactly len bytes: ASan sees any read past the record */
	uint8_t *buf = malloc(len ? len : 1);
	CHECK(buf != NULL);
	memcpy(buf, rec, len);

	enum ktls_record_verdict v = ktls_record_classify(type, buf, len, server);
	switch (type) {
	case TLS_RECORD_DATA:
		CHECK(v == KREC_DATA);
		break;
	case TLS_RECORD_ALERT:
		CHECK(v == (len >= 2 && buf[1] == 0 ? KREC_CLOSE_NOTIFY : KREC_ALERT));
		break;
	case TLS_RECORD_HANDSHAKE:
		CHECK(v == KREC_TICKETS || v == KREC_KEY_UPDATE || v == KREC_KEY_UPDATE_REQUESTED ||
		      v == KREC_UNEXPECTED_HANDSHAKE);
		break;
	default:
		CHECK(v == KREC_UNKNOWN_TYPE);
	}

	bool ku_tail = len >= 5 && buf[len - 5] == TLS_HS_KEY_UPDATE && buf[len - 4] == 0 && buf[len - 3] == 0 &&
		       buf[len - 2] == 1 && buf[len - 1] <= 1;
	bool tickets_before = server ? all_messages_of(buf, len - (ku_tail ? 5 : 0), TLS_HS_NEW_SESSION_TICKET)
				     : len == 5;
	if (v == KREC_KEY_UPDATE || v == KREC_KEY_UPDATE_REQUESTED) {
		CHECK(ku_tail && tickets_before);
		CHECK((v == KREC_KEY_UPDATE_REQUESTED) == (buf[len - 1] == 1));
		CHECK(ktls_record_classify(type, buf, len - 1, server) != KREC_KEY_UPDATE &&
		      ktls_record_classify(type, buf, len - 1, server) != KREC_KEY_UPDATE_REQUESTED);
	}
	if (v == KREC_TICKETS)
		CHECK(server && len > 0 && all_messages_of(buf, len, TLS_HS_NEW_SESSION_TICKET));
	/* and the converse: a record that is such a thing gets that verdict */
	if (type == TLS_RECORD_HANDSHAKE && ku_tail && tickets_before)
		CHECK(v == (buf[len - 1] ? KREC_KEY_UPDATE_REQUESTED : KREC_KEY_UPDATE));
	if (type == TLS_RECORD_HANDSHAKE && server && len && all_messages_of(buf, len, TLS_HS_NEW_SESSION_TICKET))
		CHECK(v == KREC_TICKETS);
	free(buf);
	return 0;
}
