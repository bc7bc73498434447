/* Unit tests for ktls_record_classify (datapath/ktls_record.c): what the splice relay does with a record a
 * kTLS socket passes up that splice could not carry. The fuzzer (tests/fuzz/ktls_record.c) checks the same
 * rules on arbitrary records; these are the cases with names. */
#include <check.h>
#include <string.h>

#include "tlsoff/ktls_record.h"
#include "run_suite.h"

/* A TLS 1.3 NewSessionTicket: lifetime, age_add, nonce<1>, ticket<2>, extensions<2> (18 bytes of body). */
#define NST 0x04, 0x00, 0x00, 0x12, 0, 0, 0x1c, 0x20, 1, 2, 3, 4, 1, 0, 0, 4, 'T', 'K', 'T', '1', 0, 0
#define KEY_UPDATE(req) 0x18, 0x00, 0x00, 0x01, (req)

static enum ktls_record_verdict hs(const uint8_t *b, size_t n, bool server)
{
	return ktls_record_classify(TLS_RECORD_HANDSHAKE, b, n, server);
}

START_TEST(key_update_alone)
{
	const uint8_t ku0[] = { KEY_UPDATE(0) }, ku1[] = { KEY_UPDATE(1) }, ku2[] = { KEY_UPDATE(2) };
	ck_assert_int_eq(hs(ku0, sizeof(ku0), false), KREC_KEY_UPDATE);
	ck_assert_int_eq(hs(ku1, sizeof(ku1), true), KREC_KEY_UPDATE_REQUESTED);
	ck_assert_int_eq(hs(ku2, sizeof(ku2), false), KREC_UNEXPECTED_HANDSHAKE);   /* not 0 or 1 */
	ck_assert_int_eq(hs(ku1, sizeof(ku1) - 1, false), KREC_UNEXPECTED_HANDSHAKE);   /* cut short */
}
END_TEST

/* RFC 8446 5.1: a KeyUpdate ends its record but may follow other messages in it. Dropping the whole record
 * as tickets lost the key change, and the server's next record failed as a bad MAC. */
START_TEST(key_update_after_tickets_in_one_record)
{
	const uint8_t rec[] = { NST, NST, KEY_UPDATE(1) };
	ck_assert_int_eq(hs(rec, sizeof(rec), true), KREC_KEY_UPDATE_REQUESTED);
	ck_assert_int_eq(hs(rec, sizeof(rec), false), KREC_UNEXPECTED_HANDSHAKE);   /* clients send no tickets */
	const uint8_t after[] = { KEY_UPDATE(0), NST };   /* nothing may follow the key change */
	ck_assert_int_eq(hs(after, sizeof(after), true), KREC_UNEXPECTED_HANDSHAKE);
}
END_TEST

START_TEST(tickets_only_from_the_server_and_whole)
{
	const uint8_t two[] = { NST, NST };
	ck_assert_int_eq(hs(two, sizeof(two), true), KREC_TICKETS);
	ck_assert_int_eq(hs(two, sizeof(two), false), KREC_UNEXPECTED_HANDSHAKE);
	ck_assert_int_eq(hs(two, sizeof(two) - 1, true), KREC_UNEXPECTED_HANDSHAKE);   /* the second is cut */
	const uint8_t finished[] = { 0x14, 0, 0, 1, 0 };
	ck_assert_int_eq(hs(finished, sizeof(finished), true), KREC_UNEXPECTED_HANDSHAKE);
	ck_assert_int_eq(hs(two, 0, true), KREC_UNEXPECTED_HANDSHAKE);
}
END_TEST

START_TEST(alerts_data_and_other_types)
{
	const uint8_t close_notify[] = { 1, 0 }, bad_mac[] = { 2, 20 };
	ck_assert_int_eq(ktls_record_classify(TLS_RECORD_ALERT, close_notify, 2, false), KREC_CLOSE_NOTIFY);
	ck_assert_int_eq(ktls_record_classify(TLS_RECORD_ALERT, bad_mac, 2, true), KREC_ALERT);
	ck_assert_int_eq(ktls_record_classify(TLS_RECORD_ALERT, bad_mac, 1, true), KREC_ALERT);   /* truncated */
	ck_assert_int_eq(ktls_record_classify(TLS_RECORD_DATA, bad_mac, 2, false), KREC_DATA);
	ck_assert_int_eq(ktls_record_classify(20 /* change_cipher_spec */, bad_mac, 1, false), KREC_UNKNOWN_TYPE);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ktls_record");
	TCase *tc = tcase_create("classify");
	tcase_add_test(tc, key_update_alone);
	tcase_add_test(tc, key_update_after_tickets_in_one_record);
	tcase_add_test(tc, tickets_only_from_the_server_and_whole);
	tcase_add_test(tc, alerts_data_and_other_types);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
