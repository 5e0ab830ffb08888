'use strict'
// The app of the bench's restart section, one HTTP server behind four ways of replacing it:
//   node restart-app.js handover <port> <control>   net-unix handover() (drains, then exits)
//   node restart-app.js plain <port>                listen; SIGTERM: server.close(), exit
//   node restart-app.js reuseport <port>            listen with reusePort (Node >= 22.12); same
//   node restart-app.js pm2 <port>                  a pm2 cluster worker; SIGINT: close, exit
// Prints one JSON line when it serves.
const http = require('node:http')

const [mode, port, control] = process.argv.slice(2)
const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify({ pid: process.pid }))
})
const say = (o) => console.log(JSON.stringify({ pid: process.pid, ...o }))
const closeThenExit = () => server.close(() => process.exit(0))

async function main() {
  if (mode === 'handover') {
    const { handover } = require('net-unix')
    const h = await handover(control)
    await h.listen(server, 'http', Number(port), '127.0.0.1')
    await h.ready()
    say({ ready: true, generation: h.generation })
    await h.drained
    process.exit(0)
  } else if (mode === 'reuseport') {
    server.listen({ port: Number(port), host: '127.0.0.1', reusePort: true }, () => say({ ready: true }))
    process.on('SIGTERM', closeThenExit)
  } else {
    server.listen(Number(port), '127.0.0.1', () => {
      say({ ready: true })
      if (process.send) process.send('ready')
    })
    process.on(mode === 'pm2' ? 'SIGINT' : 'SIGTERM', closeThenExit)
  }
}
main()
