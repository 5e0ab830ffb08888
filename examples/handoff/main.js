'use strict'
// `npm run demo`: a pre-fork HTTP server whose acceptor hands each TCP connection to a worker
// process, driven by a bounded load, once with net-unix fd passing and once with Node's
// child_process handle passing, side by side. Exits 0 only if every response was right and
// every process has exited.
//
//   node examples/handoff/main.js [--workers N] [--requests N] [--concurrency N]
const { spawn } = require('node:child_process')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: String(os.availableParallelism()) },
    requests: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '32' },
  },
})
const nworkers = positive('workers')
const total = positive('requests')
const concurrency = positive('concurrency')
const MODES = ['net-unix', 'child_process']
const TIME_LIMIT_MS = 180_000

function positive(name) {
  const n = Number(values[name])
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${name} must be a positive integer, got ${values[name]}`)
  return n
}

const live = new Set()
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL') // only after a failure: nothing left behind
})

function startAcceptor(mode) {
  const child = spawn(process.execPath, [path.join(__dirname, 'acceptor.js'), mode, String(nworkers)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  live.add(child)
  let out = ''
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d
      const m = /^ready (\d+)\n/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    child.on('close', () => reject(new Error(`acceptor (${mode}) exited before it was ready`)))
  })
  const exited = new Promise((resolve) =>
    child.on('close', (code) => {
      live.delete(child)
      resolve({ code, out })
    }),
  )
  return { child, ready, exited }
}

/** GET /r/<i> on a fresh connection (no keep-alive: every request is a hand-off). */
function get(port, i) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: `/r/${i}`, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => {
        const worker = res.headers['x-worker']
        if (res.statusCode !== 200 || body !== `/r/${i} served by ${worker}\n`) {
          reject(new Error(`request ${i}: bad response ${res.statusCode} ${JSON.stringify(body)}`))
        } else resolve(worker)
      })
    })
    req.on('error', (err) => reject(new Error(`request ${i}: ${err.message}`)))
    req.end()
  })
}

function progress(mode, done, startedAt) {
  const secs = Number(process.hrtime.bigint() - startedAt) / 1e9
  const line = `  ${mode.padEnd(14)} ${String(done).padStart(String(total).length)}/${total} requests  ${fmt(done / secs)} req/s`
  if (process.stdout.isTTY) process.stdout.write(`\r${line}`)
  else console.log(line)
}

async function load(mode, port) {
  const perWorker = new Map()
  let issued = 0
  let done = 0
  const startedAt = process.hrtime.bigint()
  const ticker = setInterval(() => progress(mode, done, startedAt), process.stdout.isTTY ? 200 : 1000)
  async function client() {
    while (issued < total) {
      const worker = await get(port, issued++)
      perWorker.set(worker, (perWorker.get(worker) || 0) + 1)
      done++
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, total) }, client))
  } finally {
    clearInterval(ticker)
  }
  const secs = Number(process.hrtime.bigint() - startedAt) / 1e9
  if (process.stdout.isTTY) process.stdout.write('\r\x1b[K')
  return { secs, perWorker }
}

async function runMode(mode) {
  const acceptor = startAcceptor(mode)
  const port = await acceptor.ready
  const { secs, perWorker } = await load(mode, port)
  acceptor.child.stdin.end() // stop: the acceptor closes the channels and the workers drain
  const { code, out } = await acceptor.exited
  if (code !== 0) throw new Error(`acceptor (${mode}) exited with ${code}`)
  const report = JSON.parse(out.trim().split('\n').pop())
  // Every process must agree: what the client saw, what was handed off, what each worker served.
  const problems = []
  if (report.handoffs !== total || report.failures) problems.push(`${report.handoffs} hand-offs, ${report.failures} failed`)
  for (const w of report.workers) {
    if (w.code !== 0) problems.push(`worker ${w.pid} exited with ${w.code}`)
    const seen = perWorker.get(String(w.pid)) || 0
    if (w.served !== seen || w.received !== seen) problems.push(`worker ${w.pid}: received ${w.received}, served ${w.served}, client saw ${seen}`)
  }
  if (problems.length) throw new Error(`${mode}: ${problems.join('; ')}`)
  return { mode, secs, rps: total / secs, ...report }
}

function fmt(n) {
  return Math.round(n).toLocaleString('en-US')
}

async function main() {
  console.log(`hand-off demo: 1 acceptor on TCP 127.0.0.1, ${nworkers} HTTP worker processes, ${total} requests, ${concurrency} at a time, keep-alive off`)
  const results = []
  for (const mode of MODES) {
    const r = await runMode(mode)
    results.push(r)
    const counts = r.workers.map((w) => w.served).join(' / ')
    console.log(
      `  ${mode.padEnd(14)} ${fmt(r.rps).padStart(7)} req/s  ${fmt(r.handoffs / r.secs).padStart(7)} hand-offs/s  ` +
        `accept→sent ${r.meanHandoffUs.toFixed(1)} µs  acceptor CPU ${r.cpuPerHandoffUs.toFixed(1)} µs/hand-off  per worker: ${counts}  (all ${total} responses checked)`,
    )
  }
  const [mine, theirs] = results
  console.log(
    `net-unix sendfds vs child_process send(msg, socket): ${(mine.rps / theirs.rps).toFixed(2)}× the requests/s, ` +
      `${(theirs.meanHandoffUs / mine.meanHandoffUs).toFixed(1)}× lower accept→sent latency, ` +
      `${(theirs.cpuPerHandoffUs / mine.cpuPerHandoffUs).toFixed(2)}× less acceptor CPU per hand-off`,
  )
}

const deadline = setTimeout(() => {
  console.error(`demo did not finish in ${TIME_LIMIT_MS / 1000} s`)
  process.exit(1)
}, TIME_LIMIT_MS).unref()

main().then(
  () => clearTimeout(deadline),
  (err) => {
    console.error(err.message)
    process.exitCode = 1
  },
)
