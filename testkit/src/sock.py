# The socket ends of the live tests, run in network namespaces as
# `python3 sock.py COMMAND ARGS` (testkit::sock::SCRIPT). Addresses may be
# IPv4 or IPv6.
#
#   server PORT           prints `ready`, accepts one TCP connection, reads to
#                         EOF, answers `BYTES SHA256 PEER-ADDRESS`
#   client HOST PORT N    connects (retrying while refused, for up to 20 s),
#                         sends N random bytes, prints
#                         `N SHA256 <the server's answer> MSS`
#   probe HOST PORT SECS  one connection attempt: `connected`, `refused` or
#                         `timeout`
#   udp-echo PORT         answers one datagram with `echo DATA from PEER`
#   udp-ask HOST PORT     sends `hello` until answered (5 tries, 1 s apart),
#                         prints the answer
#   udp-probe HOST PORT SECS  one datagram on a connected socket: `answered`,
#                         `refused` (ICMP port unreachable) or `timeout`
#   udp-send HOST PORT N  sends N datagrams, 5 ms apart
#   udp-recv PORT SECS    prints `ready`, then how many datagrams arrived
import hashlib, os, socket, sys, time


def fam(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bound(kind, port):
    """A socket on `port` of every address: IPv6 and IPv4 where the
    namespace has IPv6, IPv4 alone where it is disabled."""
    for family, any_addr in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
        try:
            s = socket.socket(family, kind)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind((any_addr, port))
            return s
        except OSError:
            if family == socket.AF_INET: raise


cmd = sys.argv[1]
if cmd == "server":
    s = bound(socket.SOCK_STREAM, int(sys.argv[2])); s.listen(1); s.settimeout(60)
    print("ready", flush=True)
    c, peer = s.accept(); c.settimeout(60); h = hashlib.sha256(); n = 0
    while True:
        d = c.recv(1 << 16)
        if not d: break
        h.update(d); n += len(d)
    addr = peer[0].removeprefix("::ffff:")
    c.sendall(f"{n} {h.hexdigest()} {addr}".encode()); c.close()
elif cmd == "client":
    host, port, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    data = os.urandom(n); deadline = time.time() + 20
    while True:
        try:
            c = socket.create_connection((host, port), timeout=30); break
        except ConnectionRefusedError:
            if time.time() > deadline: raise
            time.sleep(0.1)
    mss = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    c.settimeout(60); c.sendall(data); c.shutdown(socket.SHUT_WR)
    ans = b""
    while True:
        d = c.recv(4096)
        if not d: break
        ans += d
    print(f"{n} {hashlib.sha256(data).hexdigest()} {ans.decode()} {mss}")
elif cmd == "probe":
    try:
        socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=float(sys.argv[4]))
        print("connected")
    except ConnectionRefusedError:
        print("refused")
    except (socket.timeout, TimeoutError):
        print("timeout")
elif cmd == "udp-echo":
    s = bound(socket.SOCK_DGRAM, int(sys.argv[2]))
    s.settimeout(20); d, peer = s.recvfrom(2048)
    s.sendto(b"echo " + d + b" from " + peer[0].removeprefix("::ffff:").encode(), peer)
elif cmd == "udp-ask":
    host = sys.argv[2]; s = socket.socket(fam(host), socket.SOCK_DGRAM); s.settimeout(1)
    for _ in range(5):
        s.sendto(b"hello", (host, int(sys.argv[3])))
        try:
            print(s.recv(2048).decode()); break
        except socket.timeout:
            pass
elif cmd == "udp-probe":
    host = sys.argv[2]; s = socket.socket(fam(host), socket.SOCK_DGRAM)
    s.settimeout(float(sys.argv[4])); s.connect((host, int(sys.argv[3])))
    try:
        s.send(b"probe"); s.recv(2048); print("answered")
    except ConnectionRefusedError:
        print("refused")
    except (socket.timeout, TimeoutError):
        print("timeout")
elif cmd == "udp-send":
    host = sys.argv[2]; s = socket.socket(fam(host), socket.SOCK_DGRAM)
    for _ in range(int(sys.argv[4])):
        s.sendto(b"unsolicited", (host, int(sys.argv[3]))); time.sleep(0.005)
elif cmd == "udp-recv":
    s = bound(socket.SOCK_DGRAM, int(sys.argv[2]))
    s.settimeout(0.1); n = 0; end = time.time() + float(sys.argv[3])
    print("ready", flush=True)
    while time.time() < end:
        try:
            s.recv(2048); n += 1
        except socket.timeout:
            pass
    print(n)
else:
    sys.exit(f"sock.py: unknown command {cmd!r}")
