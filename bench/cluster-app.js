'use strict'
// The cluster bench's worker: a plain HTTP server (node:cluster only, never net-unix), counting
// the requests it answers. argv[2]: the port (0: any), argv[3]: 'reuseport' to listen with
// SO_REUSEPORT (each worker its own socket: Node >= 22.12).
const cluster = require('node:cluster')
const http = require('node:http')

let served = 0
const server = http.createServer((req, res) => {
  served++
  res.end('hello world\n')
})
const port = Number(process.argv[2])
server.listen(process.argv[3] === 'reuseport' ? { port, reusePort: true } : port, () => {
  process.send({ ev: 'listening', port: server.address().port })
})
process.on('message', (m) => {
  if (m.cmd === 'served') {
    process.send({ ev: 'served', n: served, id: cluster.worker.id })
    served = 0
  }
})
