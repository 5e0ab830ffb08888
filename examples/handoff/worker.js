'use strict'
// A worker of the pre-fork server: it never listens. Accepted TCP connections arrive from the
// acceptor, either as fds over the Unix socket on fd 3 (net-unix) or as handles over Node's IPC
// channel (child_process), and are served by an ordinary http.Server.
const http = require('node:http')
const net = require('node:net')
const { recvfds, close } = require('net-unix')

const mode = process.argv[2] // 'net-unix' | 'child_process'
const CHANNEL = 3 // our end of the acceptor's socketpair (net-unix mode)

let received = 0
let served = 0
let open = 0
let draining = false

const server = http.createServer((req, res) => {
  served++
  const body = `${req.url} served by ${process.pid}\n`
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'x-worker': String(process.pid) })
  res.end(body)
})

function adopt(socket) {
  received++
  open++
  socket.once('close', () => {
    open--
    if (draining) maybeExit()
  })
  server.emit('connection', socket)
}

// Report and let the process end by itself once the channel is gone and every connection closed:
// nothing of ours may keep it alive.
function maybeExit() {
  if (open > 0) return
  draining = false
  process.stdout.write(`${JSON.stringify({ pid: process.pid, received, served })}\n`)
}

async function receiveFds() {
  for (;;) {
    // One byte per hand-off, so a read never spans two messages' fds.
    const { data, fds } = await recvfds(CHANNEL, 1, 1)
    if (data.length === 0) break // the acceptor closed the channel: no more connections
    for (const fd of fds) adopt(new net.Socket({ fd, readable: true, writable: true }))
  }
  close(CHANNEL)
  draining = true
  maybeExit()
}

if (mode === 'net-unix') {
  receiveFds().catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
} else {
  process.on('message', (_msg, socket) => socket && adopt(socket))
  process.on('disconnect', () => {
    draining = true
    maybeExit()
  })
}
