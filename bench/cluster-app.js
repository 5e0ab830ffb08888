'use strict'
// The cluster bench's worker: a plain HTTP server (node:cluster only, never net-unix), counting
// the requests it answers. argv[2]: the port (0: any), argv[3]: 'reuseport' to listen with
// SO_REUSEPORT (each worker its own socket: Node >= 22.12).
const cluster = require('node:cluster')
const http = require('node:http')

let served = 0
const server = http.createServer((req, res) => {
  served++
  // When the connection reached this worker (CLOCK_MONOTONIC, as the load generator's clock):
  // the load generator splits each latency into the way to the worker and the rest.
  res.setHeader('x-connection-ns', String(req.socket.connectedAt))
  res.end('hello world\n')
})
server.on('connection', (socket) => {
  socket.connectedAt = process.hrtime.bigint()
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
