'use strict'
// The cluster section of `npm run bench` (also alone: `node bench/cluster.js`). One run, the same
// app (bench/cluster-app.js, 2 workers) under each scheduler, the load generator in its own
// process: node:cluster SCHED_RR, SCHED_NONE, reusePort (Node 22 from the registry), and
// net-unix/cluster. Per contender: closed-loop requests/s on new connections (wrk, 32
// connections, `Connection: close`); then an open loop at 75% of SCHED_RR's closed-loop rate
// (bench/loadgen.c, a connection every 1/rate s, latency from the scheduled start) for p50/p99,
// the way to the worker alone (to its 'connection' event: bench/cluster-app.js sends the time
// back), the primary's CPU per connection (/proc/<pid>/stat) and each worker's share; failures
// of both.
// Prints a Markdown table and the targets; bench/run.js puts them into RESULTS.md.
const { execFileSync, spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { nodeBinaries } = require('../scripts/node-majors.js')

const SECONDS = Number(process.env.BENCH_CLUSTER_SECONDS || 5)
const WORKERS = 2
const here = __dirname
const root = path.join(here, '..')

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
const lines = []
if (!has('wrk') || !has('cc')) {
  console.log(
    '### cluster: new connections through the primary\n\nskipped: needs `wrk` (Debian: `apt-get install wrk`) and `cc`.\n',
  )
  process.exit(0)
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'net-unix-cluster-bench-'))
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }))
const loadgen = path.join(tmp, 'loadgen')
execFileSync('cc', ['-O2', '-o', loadgen, path.join(here, 'loadgen.c')], { stdio: 'inherit' })
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

let node22 = null
try {
  node22 = nodeBinaries([22])[22]
} catch {} // no registry: the reusePort row is left out
const RR = 'node:cluster SCHED_RR'
const contenders = [
  { name: RR, node: process.execPath, module: 'node', env: { NODE_CLUSTER_SCHED_POLICY: 'rr' } },
  {
    name: 'node:cluster SCHED_NONE',
    node: process.execPath,
    module: 'node',
    env: { NODE_CLUSTER_SCHED_POLICY: 'none' },
  },
  ...(node22 ? [{ name: 'node:cluster + reusePort (Node 22)', node: node22, module: 'node', reusePort: true }] : []),
  { name: 'net-unix/cluster', node: process.execPath, module: 'net-unix' },
]

function freePort() {
  const r = spawnSync(
    process.execPath,
    ['-e', "const s=require('net').createServer().listen(0,()=>{console.log(s.address().port);s.close()})"],
    {
      encoding: 'utf8',
    },
  )
  return Number(r.stdout.trim())
}

function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(f[11]) + Number(f[12]) // utime + stime
}

function runTool(cmd, args) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.on('error', reject)
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}`))))
  })
}

async function wrk(port, seconds) {
  const out = await runTool('wrk', [
    '-t1',
    '-c32',
    `-d${seconds}s`,
    '-H',
    'Connection: close',
    `http://127.0.0.1:${port}/`,
  ])
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1])
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] || 0)
  // wrk counts the server's close after each answer as a read error with Connection: close on
  // some versions: only connect errors, timeouts and non-2xx count as failures here.
  const failures = (sock ? Number(sock[1]) + Number(sock[4]) : 0) + non2xx
  return { rps, failures }
}

function nextMessage(child, ev) {
  return new Promise((resolve, reject) => {
    const on = (m) => {
      if (m.ev !== ev) return
      child.off('message', on)
      resolve(m)
    }
    child.on('message', on)
    child.once('exit', (code) => reject(new Error(`primary exited ${code}`)))
  })
}

async function measure(c, offered) {
  const port = c.reusePort ? freePort() : 0
  const primary = spawn(
    c.node,
    [path.join(here, 'cluster-primary.js'), c.module, WORKERS, port, c.reusePort ? 'reuseport' : ''],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...c.env },
    },
  )
  // On any failure below, the primary goes (and its workers with their IPC channel).
  const killOnError = (e) => {
    if (primary.exitCode === null && primary.signalCode === null) primary.kill('SIGKILL')
    throw e
  }
  return measureWith(primary, offered).catch(killOnError)
}

async function measureWith(primary, offered) {
  const ready = await nextMessage(primary, 'ready')
  const served = async () => {
    const m = nextMessage(primary, 'served')
    primary.send({ cmd: 'served' })
    return (await m).counts
  }
  await wrk(ready.port, 1) // warm-up
  await served()
  const sat0 = cpuTicks(ready.pid)
  const closed = await wrk(ready.port, SECONDS)
  const sat1 = cpuTicks(ready.pid)
  await served()
  const rate = offered ?? Math.round(0.75 * closed.rps)
  const cpu0 = cpuTicks(ready.pid)
  const open = JSON.parse(await runTool(loadgen, [String(ready.port), String(rate), String(SECONDS)]))
  const cpu1 = cpuTicks(ready.pid)
  const shares = await served()
  const exited = new Promise((resolve) => primary.once('exit', resolve))
  primary.send({ cmd: 'stop' })
  await exited
  const openFailures = Object.values(open.failures).reduce((a, b) => a + b, 0)
  return {
    closedRps: closed.rps,
    rate,
    p50: open.p50 / 1000,
    p99: open.p99 / 1000,
    toWorkerP50: open.toWorkerP50 / 1000,
    toWorkerP99: open.toWorkerP99 / 1000,
    cpuPerConn: (((cpu1 - cpu0) / CLK_TCK) * 1e6) / Math.max(1, open.ok),
    cpuPerConnSaturated: (((sat1 - sat0) / CLK_TCK) * 1e6) / Math.max(1, closed.rps * SECONDS),
    shares,
    failures: closed.failures + openFailures,
    openFailures: open.failures,
  }
}

async function main() {
  const loadBefore = os.loadavg()[0]
  const results = new Map()
  let offered
  for (const c of contenders) {
    process.stderr.write(`cluster: ${c.name}\n`)
    try {
      const r = await measure(c, offered)
      if (c.name === RR) offered = r.rate
      results.set(c.name, r)
    } catch (e) {
      process.stderr.write(`  ${c.name}: ${e.message}\n`)
    }
  }
  const loadAfter = os.loadavg()[0]
  const rr = results.get(RR)
  const fmt = (n, d = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: d }) : 'n/a')
  lines.push(
    `### cluster: new connections through the primary (${WORKERS} workers, one run)`,
    '',
    `Open loop at ${fmt(offered)} connections/s (75% of ${RR}'s closed-loop rate), ${SECONDS} s per run; load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after (2 cores shared with other work).`,
    '',
    '| | closed-loop req/s | × SCHED_RR | p50 ms | p99 ms | p99 × SCHED_RR | to the worker p50 / p99 ms | primary CPU µs/conn | × SCHED_RR | same, closed loop | worker shares (max/min) | failures |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|',
  )
  for (const c of contenders) {
    const r = results.get(c.name)
    if (!r) {
      lines.push(`| ${c.name} | failed |`)
      continue
    }
    const ratio = Math.max(...r.shares) / Math.max(1, Math.min(...r.shares))
    lines.push(
      `| ${c.name} | ${fmt(r.closedRps)} | ${(r.closedRps / rr.closedRps).toFixed(2)}× | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${(r.p99 / rr.p99).toFixed(2)}× | ${fmt(r.toWorkerP50, 2)} / ${fmt(r.toWorkerP99, 2)} | ${fmt(r.cpuPerConn, 1)} | ${(r.cpuPerConn / rr.cpuPerConn).toFixed(2)}× | ${fmt(r.cpuPerConnSaturated, 1)} | ${r.shares.join(' / ')} (${ratio.toFixed(2)}) | ${r.failures} |`,
    )
  }
  const ours = results.get('net-unix/cluster')
  if (ours && rr) {
    const share = Math.max(...ours.shares) / Math.max(1, Math.min(...ours.shares))
    const targets = [
      ['p99 latency ≤ ⅓ of SCHED_RR at the same offered rate', ours.p99 / rr.p99, 1 / 3],
      ['primary CPU per connection ≤ ⅓ of SCHED_RR (open loop, same rate)', ours.cpuPerConn / rr.cpuPerConn, 1 / 3],
    ['(for comparison) primary CPU per connection, closed loop, ≤ ⅓ of SCHED_RR', ours.cpuPerConnSaturated / rr.cpuPerConnSaturated, 1 / 3],
      ['worker share max/min ≤ 1.2', share, 1.2],
      ['0 failures', ours.failures, 0],
    ]
    lines.push('', '#### Cluster targets', '')
    for (const [what, got, want] of targets)
      lines.push(`- ${got <= want ? 'met' : '**missed**'}: ${what}: measured ${got.toFixed(2)}`)
  }
  lines.push('')
  console.log(lines.join('\n'))
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
