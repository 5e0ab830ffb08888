// Compiled (not run) by modules.spec.ts: the published types as an ESM user meets them.
import { backlog, connect, listen, newmsg, addvector, recvmsg, sockflag, invalid, type socket } from 'net-unix'

const l: socket = listen('\0types', backlog(4), sockflag.NONBLOCK)
const c: Promise<socket> = connect('\0types', sockflag.NOCLOEXEC, { timeout: 100 })
const m = newmsg()
addvector(m, new Uint8Array(4))
const n: Promise<number> = recvmsg(l, m, { signal: AbortSignal.timeout(10) })
const e: invalid | null = null
void [c, n, e]
