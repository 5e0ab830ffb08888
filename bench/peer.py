# Python's socket.send_fds / recv_fds on the fd-passing case of bench/peer.c.
# usage: peer.py fdpass COUNT NFDS [seqpacket]; prints {"ops":N,"ns":N,"fds":N}
#        peer.py dgram COUNT: 64-byte datagrams over a SOCK_DGRAM socketpair; {"ops":N,"ns":N}
import json, os, socket, struct, sys, time

case, count = sys.argv[1], int(sys.argv[2])
if case == "dgram":
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    if os.fork() == 0:
        a.close()
        for _ in range(count):
            b.recv(64)
        b.send(struct.pack("<q", count))
        os._exit(0)
    b.close()
    buf = bytes(64)
    t0 = time.perf_counter_ns()
    for _ in range(count):
        a.send(buf)
    a.recv(8)
    print(json.dumps({"ops": count, "ns": time.perf_counter_ns() - t0}))
    os.wait()
    sys.exit(0)
nfds = int(sys.argv[3])
kind = socket.SOCK_SEQPACKET if sys.argv[4:] == ["seqpacket"] else socket.SOCK_STREAM
a, b = socket.socketpair(socket.AF_UNIX, kind)
if os.fork() == 0:
    a.close()
    got = 0
    for _ in range(count):
        _, fds, _, _ = socket.recv_fds(b, 1, nfds)
        for fd in fds:
            os.close(fd)
        got += len(fds)
    b.sendall(struct.pack("<q", got))  # the count of fds received and closed
    os._exit(0)
b.close()
fds = [os.open("/dev/null", os.O_RDONLY)] * nfds
t0 = time.perf_counter_ns()
for _ in range(count):
    socket.send_fds(a, [b"x"], fds)
ack = b""
while len(ack) < 8:
    ack += a.recv(8 - len(ack))
ns = time.perf_counter_ns() - t0
print(json.dumps({"ops": count, "ns": ns, "fds": struct.unpack("<q", ack)[0]}))
os.wait()
