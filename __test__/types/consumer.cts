// Compiled (not run) by modules.spec.ts: the published types as a CommonJS user meets them.
import unix = require('net-unix')

const [a, b]: [number, number] = unix.socketpair(unix.sockflag.NONBLOCK)
const cred: { pid: number; uid: number; gid: number } = unix.peercred(a)
const r: Promise<unix.RecvFdsResult> = unix.recvfds(b, 16, 2)
void [cred, r]

// net-unix/cluster as CommonJS code requires it: the cluster object itself.
import cluster = require('net-unix/cluster')
const info: cluster.DistributeInfo = { key: 'null:0:4:undefined:0', remoteAddress: '127.0.0.1', remotePort: 1, localPort: 80 }
if (cluster.isPrimary) cluster.setupPrimary({ distribute: () => undefined })
cluster.on('listening', (worker, address) => void [worker.id, address.port, info])
// A primary taking part in a hand-over.
void unix.handover('/tmp/primary.sock').then((h: unix.Handover) => cluster.setupPrimary({ handover: h }))
