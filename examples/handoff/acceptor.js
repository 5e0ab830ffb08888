'use strict'
// The acceptor of the pre-fork server: it alone listens on TCP, accepts, and hands every accepted
// connection to a worker, round-robin. Mode 'net-unix' sends the fd over a socketpair with
// sendfds; mode 'child_process' uses Node's own handle passing, child.send(msg, socket).
//
// Protocol with main.js: prints "ready <port>" once listening; when its stdin ends it stops
// accepting, closes the workers' channels, waits for them to exit and prints one JSON line.
const { spawn, fork } = require('node:child_process')
const net = require('node:net')
const path = require('node:path')
const { socketpair, sendfds, close } = require('net-unix')

const mode = process.argv[2]
const nworkers = Number(process.argv[3])
const WORKER = path.join(__dirname, 'worker.js')
const ONE_BYTE = Buffer.from('c') // the kernel drops fds sent with no data

const workers = []
for (let i = 0; i < nworkers; i++) {
  let worker
  if (mode === 'net-unix') {
    const [channel, theirs] = socketpair()
    // The child gets its end as fd 3; ours stays close-on-exec and the copy here is closed.
    const child = spawn(process.execPath, [WORKER, mode], { stdio: ['ignore', 'pipe', 'inherit', theirs] })
    close(theirs)
    worker = { child, channel }
  } else {
    worker = { child: fork(WORKER, [mode], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] }) }
  }
  let out = ''
  worker.child.stdout.on('data', (d) => (out += d))
  // 'exit' and the end of stdout, not 'close': Node never emits 'close' for a forked child whose
  // IPC channel the parent disconnected.
  const exit = new Promise((resolve) => worker.child.on('exit', resolve))
  const drained = new Promise((resolve) => worker.child.stdout.on('close', resolve))
  worker.exited = Promise.all([exit, drained]).then(([code]) => ({ code, out }))
  workers.push(worker)
}

let next = 0
let inFlight = 0
let handoffs = 0
let failures = 0
let handoffNs = 0n
let cpuAtFirst = null // the acceptor's CPU time from its first connection on
let stopping = false

function handOff(socket) {
  cpuAtFirst ??= process.cpuUsage()
  const worker = workers[next++ % workers.length]
  const started = process.hrtime.bigint()
  const done = (err) => {
    if (err) {
      failures++
      console.error(`hand-off failed: ${err.message}`)
    } else {
      handoffs++
      handoffNs += process.hrtime.bigint() - started
    }
    if (--inFlight === 0 && stopping) stop()
  }
  inFlight++
  if (mode === 'net-unix') {
    // Node has no public getter for an accepted socket's fd; child_process reads this same field.
    sendfds(worker.channel, ONE_BYTE, [socket._handle.fd]).then(
      () => done(),
      (err) => done(err),
    ).finally(() => socket.destroy()) // the worker holds its own reference now
  } else {
    worker.child.send('c', socket, (err) => done(err)) // Node closes our copy once sent
  }
}

// pauseOnConnect: this process must never read a byte meant for the worker.
const server = net.createServer({ pauseOnConnect: true }, handOff)
server.listen(0, '127.0.0.1', () => console.log(`ready ${server.address().port}`))

process.stdin.resume()
process.stdin.on('end', () => {
  stopping = true
  server.close()
  if (inFlight === 0) stop()
})

let stopped = false
async function stop() {
  if (stopped) return
  stopped = true
  const cpu = process.cpuUsage(cpuAtFirst ?? undefined)
  for (const w of workers) {
    if (mode === 'net-unix') close(w.channel) // the worker reads EOF, drains and exits
    else w.child.disconnect()
  }
  const results = await Promise.all(workers.map((w) => w.exited))
  const stats = results.map(({ code, out }) => ({ code, ...JSON.parse(out.trim().split('\n').pop() || '{}') }))
  console.log(JSON.stringify({ handoffs, failures, meanHandoffUs: handoffs ? Number(handoffNs / BigInt(handoffs)) / 1000 : 0, cpuPerHandoffUs: handoffs ? (cpu.user + cpu.system) / handoffs : 0, workers: stats }))
}
