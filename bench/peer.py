# Python's peers for bench/run.js, the same cases as bench/peer.c.
# usage: peer.py fdpass COUNT NFDS | peer.py pingpong COUNT; prints {"ops":N,"ns":N[,"fds":N]}
import json, os, socket, struct, sys, time


def recv_exactly(s, n):
    got = b""
    while len(got) < n:
        got += s.recv(n - len(got))
    return got


def fdpass(count, nfds):
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
    ack = recv_exactly(a, 8)
    ns = time.perf_counter_ns() - t0
    print(json.dumps({"ops": count, "ns": ns, "fds": struct.unpack("<q", ack)[0]}))
    os.wait()


def pingpong(count):
    a, b = socket.socketpair()
    if os.fork() == 0:
        a.close()
        for _ in range(count):
            b.sendall(recv_exactly(b, 64))
        os._exit(0)
    b.close()
    buf = bytes(64)
    t0 = time.perf_counter_ns()
    for _ in range(count):
        a.sendall(buf)
        recv_exactly(a, 64)
    print(json.dumps({"ops": count, "ns": time.perf_counter_ns() - t0}))
    os.wait()


case, args = sys.argv[1], [int(x) for x in sys.argv[2:]]
{"fdpass": fdpass, "pingpong": pingpong}[case](*args)
