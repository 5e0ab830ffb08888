'use strict'
// `npm run demo:restart`: an HTTP server under load (keep-alive and new-connection clients) is
// replaced 10 times by handover(), each time by a process of another Node major (20 → 22 → 24
// → 26 and back, Node from npm, cached outside the repo). Prints requests, failures, p99
// latency and the longest accept pause during the replacements. Exits 0 only with 0 failures.
//
//   node examples/restart/main.js [--replacements N] [--keepalive N] [--fresh N]
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')
const { nodeBinaries } = require('../../scripts/node-majors.js')

const { values } = parseArgs({
  options: {
    replacements: { type: 'string', default: '10' },
    keepalive: { type: 'string', default: '8' },
    fresh: { type: 'string', default: '4' },
  },
})
const REPLACEMENTS = Number(values.replacements)
const MAJORS = [22, 24, 26, 24, 22, 20]
const nodes = nodeBinaries([20, 22, 24, 26])
const control = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'net-unix-restart-')), 'control.sock')
const live = new Set()
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL') // only after a failure
})

function generation(major) {
  const child = spawn(nodes[major], [path.join(__dirname, 'app.js'), control, '0'], { stdio: ['ignore', 'pipe', 'inherit'] })
  live.add(child)
  const lines = []
  const waiters = []
  let buf = ''
  child.stdout.on('data', (d) => {
    buf += d
    for (let nl; (nl = buf.indexOf('\n')) >= 0; buf = buf.slice(nl + 1)) {
      lines.push(JSON.parse(buf.slice(0, nl)))
      waiters.splice(0).forEach((w) => w())
    }
  })
  const exited = new Promise((resolve) => child.on('exit', (code) => (live.delete(child), resolve(code))))
  const line = async (key) => {
    for (;;) {
      const found = lines.find((l) => l[key])
      if (found) return found
      if (child.exitCode !== null) throw new Error(`Node ${major} generation exited ${child.exitCode} before '${key}'`)
      await Promise.race([new Promise((r) => waiters.push(r)), exited])
    }
  }
  return { child, major, line, exited }
}

// The load: each client requests in a loop; every request is recorded.
const records = [] // [start, end, ok, fresh]
const errors = []
let running = true
function client(agent, fresh, port) {
  return (async () => {
    while (running) {
      const start = performance.now()
      const ok = await new Promise((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          let body = ''
          res.on('data', (d) => (body += d))
          res.on('end', () => resolve(res.statusCode === 200 && body.includes('"pid"')))
          res.on('error', (e) => (errors.push(e.message), resolve(false)))
        })
        req.on('error', (e) => (errors.push(e.message), resolve(false)))
      })
      records.push([start, performance.now(), ok, fresh])
    }
  })()
}

const quantile = (xs, q) => (xs.length ? xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] : 0)

async function main() {
  let current = generation(20)
  const port = (await current.line('ready')).port
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number(values.keepalive) })
  const clients = [
    ...Array.from({ length: Number(values.keepalive) }, () => client(agent, false, port)),
    ...Array.from({ length: Number(values.fresh) }, () => client(false, true, port)),
  ]
  console.log(`server on 127.0.0.1:${port}; ${values.keepalive} keep-alive + ${values.fresh} new-connection clients`)
  const windows = []
  await new Promise((r) => setTimeout(r, 1000))
  for (let i = 0; i < REPLACEMENTS; i++) {
    const major = MAJORS[i % MAJORS.length]
    const t0 = performance.now()
    const next = generation(major)
    const ready = await next.line('ready')
    const drained = (await current.line('drained')).drained
    const code = await current.exited
    const t1 = performance.now()
    windows.push([t0, t1])
    console.log(
      `replacement ${String(i + 1).padStart(2)}: Node ${current.major} (pid ${current.child.pid}) → Node ${major} (pid ${ready.pid}, generation ${ready.generation})` +
        ` in ${(t1 - t0).toFixed(0)} ms; old exited ${code}; connections handed over ${drained.handedOver}, finished ${drained.finished}, destroyed ${drained.destroyed}`,
    )
    current = next
    await new Promise((r) => setTimeout(r, 500))
  }
  await new Promise((r) => setTimeout(r, 500))
  running = false
  await Promise.all(clients)
  agent.destroy()
  current.child.kill('SIGTERM')
  await current.exited

  const inWindow = (r) => windows.some(([a, b]) => r[1] >= a && r[0] <= b)
  const during = records.filter(inWindow)
  const failed = records.filter((r) => !r[2]).length
  // Accept pause: the longest time no new-connection request completed, inside a replacement.
  let pause = 0
  for (const [a, b] of windows) {
    const ends = records.filter((r) => r[3] && r[2] && r[1] >= a && r[1] <= b).map((r) => r[1]).sort((x, y) => x - y)
    let prev = a
    for (const e of [...ends, b]) (pause = Math.max(pause, e - prev)), (prev = e)
  }
  const lat = (rs) => quantile(rs.map((r) => r[1] - r[0]), 0.99).toFixed(1)
  console.log(`requests: ${records.length} (${during.length} during replacements), failed: ${failed}`)
  console.log(`p99 latency: ${lat(records)} ms overall, ${lat(during)} ms during replacements`)
  console.log(`longest accept pause (no new connection answered) during a replacement: ${pause.toFixed(1)} ms`)
  if (failed) console.log(`errors: ${[...new Set(errors)].slice(0, 5).join('; ')}`)
  process.exit(failed === 0 && windows.length === REPLACEMENTS ? 0 : 1)
}
main().catch((e) => {
  console.error(e)
  process.exit(1)
})
