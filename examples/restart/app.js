'use strict'
// One generation of the restart demo's HTTP server: node app.js <control socket> <port>.
// Every generation runs this same file; the first listens on <port>, the later ones inherit
// the listener (and idle keep-alive connections) from the one before, then it drains and exits.
const http = require('node:http')
const { handover } = require('net-unix')

async function main() {
  const [control, port] = process.argv.slice(2)
  const h = await handover(control, { drain: 10_000 })
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ pid: process.pid, node: process.version, generation: h.generation }))
  })
  await h.listen(server, 'http', Number(port), '127.0.0.1')
  await h.ready()
  console.log(JSON.stringify({ ready: true, pid: process.pid, generation: h.generation, port: server.address().port }))
  h.once('handover', () => console.log(JSON.stringify({ handover: true, pid: process.pid, at: Date.now() })))
  const drained = await h.drained
  console.log(JSON.stringify({ drained, pid: process.pid }))
  process.exit(0)
}
main().catch((e) => {
  console.error(e)
  process.exit(1)
})
