'use strict'
// The cluster bench's primary. argv: module ('node' | 'net-unix'), workers, port, 'reuseport'?
// Tells its parent (IPC) the port once every worker listens; on { cmd: 'served' } reports each
// worker's count since the last ask; on { cmd: 'stop' } ends its workers and so itself.
const path = require('node:path')

const [which, n, port, mode] = process.argv.slice(2)
const cluster = which === 'net-unix' ? require(path.join(__dirname, '..', 'cluster.js')) : require('node:cluster')
cluster.setupPrimary({ exec: path.join(__dirname, 'cluster-app.js'), args: [port, mode || ''] })
let listening = 0
let counts = []
cluster.on('message', (w, m) => {
  if (m.ev === 'listening' && ++listening === Number(n)) process.send({ ev: 'ready', port: m.port, pid: process.pid })
  if (m.ev === 'served') {
    counts.push(m.n)
    if (counts.length === Number(n)) {
      process.send({ ev: 'served', counts })
      counts = []
    }
  }
})
process.on('message', (m) => {
  if (m.cmd === 'served') for (const w of Object.values(cluster.workers)) w.send({ cmd: 'served' })
  if (m.cmd === 'stop') {
    // Not cluster.disconnect(): a reusePort server is the worker's own, which disconnect leaves open.
    for (const w of Object.values(cluster.workers)) w.process.kill()
    process.disconnect()
  }
})
for (let i = 0; i < Number(n); i++) cluster.fork()
