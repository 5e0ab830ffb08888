# Python's socket.send_fds / recv_fds on the fd-passing case of bench/peer.c.
# usage: peer.py fdpass COUNT NFDS; prints {"ops":N,"ns":N,"fds":N}
import json, os, socket, struct, sys, time

_, case, count, nfds = sys.argv
count, nfds = int(count), int(nfds)
a, b = socket.socketpair()
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
