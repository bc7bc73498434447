#!/usr/bin/env bash
# timeout: 300
# The TLS configuration scan (make tls-scan) in its quick form: testssl.sh against tlsoffd with the shipped
# configuration and a test PKI must find nothing of severity MEDIUM or above that tlsoff controls, every
# check of protocols, cipher categories and order, forward secrecy, session tickets, certificate chain and
# vulnerabilities must have reported, and session tickets must resume with TLS 1.2 and 1.3.
# --quick leaves out testssl's per-cipher enumeration and client simulations (scripts/tls-scan says why
# nothing tlsoff controls is lost). ~45-60 s on an idle 2-core machine, up to ~2 min when it is loaded.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need testssl openssl python3

"$ROOT/scripts/tls-scan" --quick --out "$T/scan" || fail "the TLS configuration scan failed (table above; $T/scan)"
# The scan went through tlsoffd to the backend: testssl read its HTTP answer.
status=$(python3 -c 'import json, sys
print(" ".join(f["finding"] for f in json.load(open(sys.argv[1])) if f["id"] == "HTTP_status_code"))' "$T/scan/scan.json")
[[ "$status" == "200 OK"* ]] || fail "testssl did not get the backend's 200 through tlsoffd: '$status'"
log "tls-scan passed"
