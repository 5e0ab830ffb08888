// Compiled (not run) by modules.spec.ts: the published types as an ESM user meets them.
import { backlog, connect, listen, newmsg, addvector, recvmsg, sockflag, invalid, type socket } from 'net-unix'

const l: socket = listen('\0types', backlog(4), sockflag.NONBLOCK)
const c: Promise<socket> = connect('\0types', sockflag.NOCLOEXEC, { timeout: 100 })
const m = newmsg()
addvector(m, new Uint8Array(4))
const n: Promise<number> = recvmsg(l, m, { signal: AbortSignal.timeout(10) })
const e: invalid | null = null
void [c, n, e]

// net-unix/cluster: node:cluster's object, `distribute` in the settings.
import cluster, { isPrimary, type DistributeInfo } from 'net-unix/cluster'
import type { Worker } from 'node:cluster'
cluster.setupPrimary({
  exec: 'worker.js',
  distribute: (info: DistributeInfo): Worker | undefined => (info.remotePort === 1 ? cluster.workers?.[1] : undefined),
})
const w: Worker | undefined = isPrimary ? cluster.fork({ X: '1' }) : undefined
// @ts-expect-error distribute is a function
cluster.setupPrimary({ distribute: 1 })
void w
