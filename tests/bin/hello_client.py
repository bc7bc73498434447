#!/usr/bin/env python3
"""hello_client.py — a TLS client (Python's ssl over a MemoryBIO) that controls how its ClientHello reaches
the wire, for the passthrough tests:

  hello_client.py HOST PORT SNI split      send the ClientHello one byte per segment (TCP_NODELAY, 2 ms apart)
  hello_client.py HOST PORT SNI smallmss   TCP_MAXSEG 88 before connecting: the hello spans several segments
  hello_client.py HOST PORT SNI whole      the ClientHello in one write

then GET /bytes/100000/4 from tests/bin/http_backend behind the TLS server and print
"<sha256 of the body> <body length> <sha256 of the server certificate (DER)>". SNI '-' sends none.
"""
import hashlib
import socket
import ssl
import sys
import time

host, port, sni, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = socket.socket()
s.settimeout(20)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
if mode == "smallmss":
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 88)
s.connect((host, port))
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(inc, out, server_hostname=None if sni == "-" else sni)


def flush():
    data = out.read()
    if data:
        s.sendall(data)


def fill():
    data = s.recv(65536)
    if not data:
        sys.exit("the server closed the connection")
    inc.write(data)


try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = out.read()
if mode == "split":
    for i in range(len(hello)):
        s.send(hello[i:i + 1])
        time.sleep(0.002)
else:
    s.sendall(hello)
while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        flush()
        fill()
flush()
tls.write(b"GET /bytes/100000/4 HTTP/1.0\r\nHost: x\r\n\r\n")
flush()
resp = b""
while True:
    try:
        chunk = tls.read(65536)
        if not chunk:
            break
        resp += chunk
    except ssl.SSLWantReadError:
        data = s.recv(65536)
        if not data:
            break
        inc.write(data)
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
        break
body = resp.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in resp else b""
cert = tls.getpeercert(binary_form=True) or b""
print(hashlib.sha256(body).hexdigest(), len(body), hashlib.sha256(cert).hexdigest())
