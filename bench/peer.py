# Python's peers for bench/run.js, the same cases as bench/peer.c.
# usage: peer.py fdpass COUNT NFDS [seqpacket] | pingpong COUNT | dgram COUNT
# prints {"ops":N,"ns":N[,"fds":N]}
import json, os, socket, struct, sys, time


def recv_exactly(s, n):
    got = b""
    while len(got) < n:
        got += s.recv(n - len(got))
    return got


def fdpass(count, nfds, kind="stream"):
    kind = socket.SOCK_SEQPACKET if kind == "seqpacket" else socket.SOCK_STREAM
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


def dgram(count):
    """64-byte datagrams over a SOCK_DGRAM socketpair; the receiver acks with the count."""
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


case, args = sys.argv[1], sys.argv[2:]
if case == "fdpass":
    fdpass(int(args[0]), int(args[1]), *args[2:])
elif case == "pingpong":
    pingpong(int(args[0]))
elif case == "dgram":
    dgram(int(args[0]))
