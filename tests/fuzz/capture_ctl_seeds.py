#!/usr/bin/env python3
"""Seeds for the ctl_msg harness: the bytes the real tlsoffctl writes to the control socket for each kind of
request, captured on a Unix socket that answers nothing (tlsoffctl then gives up: we only keep what it sent).
Usage: tests/fuzz/capture_ctl_seeds.py build/tlsoffctl tests/fuzz/corpus/ctl_msg"""
import os, socket, subprocess, sys, tempfile, threading

COMMANDS = {
    "backend-add": "backend add api server 127.0.0.1:8080 server [::1]:8081 balance leastconn proxy-protocol v2 connect-timeout 900",
    "backend-add-tls": "backend add sec server 10.0.0.1:443 tls ca /etc/ca.pem verify on sni api.example.com cert /c.pem key /k.pem",
    "backend-del": "backend del api",
    "backend-show": "backend show",
    "frontend-add": "frontend add web listen 127.0.0.1:8443 cert /a.pem key /a.key ocsp /a.der cert /b.pem key /b.key backend api alpn h2,http/1.1 tls-min 1.3 datapath splice handshake-timeout 5000 idle-timeout 60000 max-conns 100 nic-offload prefer client-ca /ca.pem client-verify optional",
    "frontend-add-plain": "frontend add raw listen [::1]:9000 plain backend api idle-timeout 1000 max-conns 5",
    "frontend-add-passthrough": "frontend add pt listen 127.0.0.1:9443 passthrough sni example.com=api sni *.example.com=sec default api",
    "frontend-del": "frontend del web",
    "frontend-show": "frontend show web",
    "server-add": "server add api 127.0.0.1:8082",
    "server-drain": "server drain api 127.0.0.1:8082",
    "cert-add": "cert add web cert /c.pem key /c.key ocsp /c.der",
    "cert-replace": "cert replace web cert /n.pem key /n.key old /c.pem",
    "cert-del": "cert del web /c.pem",
    "cert-show": "cert show",
    "conn-show": "conn show",
    "conn-kill": "conn kill 42",
    "stats": "stats",
    "status": "status",
    "offload-show": "offload show",
    "config-dump": "config dump",
    "tickets-keys": "tickets keys /etc/tlsoff/tickets.key",
    "metrics-listen": "metrics listen 127.0.0.1:9100",
    "metrics-off": "metrics off",
}

def capture(ctl, args, sock_path):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    got = bytearray()
    def serve():
        conn, _ = srv.accept()
        conn.settimeout(1.0)
        try:
            while True:
                b = conn.recv(65536)
                if not b:
                    break
                got.extend(b)
        except socket.timeout:
            pass
        conn.close()
    t = threading.Thread(target=serve)
    t.start()
    subprocess.run([ctl, "-s", sock_path] + args.split(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=10)
    t.join()
    srv.close()
    os.unlink(sock_path)
    return bytes(got)

def main():
    ctl, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        for name, args in COMMANDS.items():
            data = capture(ctl, args, os.path.join(d, "control"))
            if not data:
                sys.exit(f"{name}: tlsoffctl sent nothing")
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)
            print(f"{name}: {len(data)} bytes")

main()
