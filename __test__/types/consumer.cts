// Compiled (not run) by modules.spec.ts: the published types as a CommonJS user meets them.
import unix = require('net-unix')

const [a, b]: [number, number] = unix.socketpair(unix.sockflag.NONBLOCK)
const cred: { pid: number; uid: number; gid: number } = unix.peercred(a)
const r: Promise<unix.RecvFdsResult> = unix.recvfds(b, 16, 2)
void [cred, r]
