# Python's socket.send_fds / recv_fds on the fd-passing case of bench/peer.c.
# usage: peer.py fdpass COUNT NFDS; prints {"ops":N,"ns":N}
import json, os, socket, sys, time

_, case, count, nfds = sys.argv
count, nfds = int(count), int(nfds)
a, b = socket.socketpair()
if os.fork() == 0:
    a.close()
    for _ in range(count):
        _, fds, _, _ = socket.recv_fds(b, 1, nfds)
        for fd in fds:
            os.close(fd)
    b.send(b"k")
    os._exit(0)
b.close()
fds = [os.open("/dev/null", os.O_RDONLY)] * nfds
t0 = time.perf_counter_ns()
for _ in range(count):
    socket.send_fds(a, [b"x"], fds)
a.recv(1)
print(json.dumps({"ops": count, "ns": time.perf_counter_ns() - t0}))
os.wait()
