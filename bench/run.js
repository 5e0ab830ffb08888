'use strict'
// `npm run bench`: every case side by side in one run. Each contender is first calibrated to
// take ~BENCH_SECONDS (default 1.5 s) per run, then run BENCH_REPS times (default 5), the reps
// interleaved (and the order rotated) so machine noise hits all contenders alike. Medians and
// ratios are printed and written to bench/RESULTS.md. Checks nothing: it is not a test.
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const REPS = Number(process.env.BENCH_REPS || 5)
const SECONDS = Number(process.env.BENCH_SECONDS || 1.5)
const here = __dirname
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'net-unix-bench-'))
const cleanup = () => fs.rmSync(tmp, { recursive: true, force: true })
process.on('exit', cleanup)
process.on('SIGINT', () => process.exit(130))
const cbin = path.join(tmp, 'peer')
execFileSync('cc', ['-O2', '-o', cbin, path.join(here, 'peer.c')], { stdio: 'inherit' })

const node = (...args) => [process.execPath, path.join(here, 'peer.js'), ...args.map(String)]
// Bun from the devDependency: the same peer script, readiness from net-unix's poll thread.
const bunBin = path.join(here, '..', 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun')
const hasBun = fs.existsSync(bunBin)
const bun = (...args) => [bunBin, path.join(here, 'peer.js'), ...args.map(String)]
const c = (...args) => [cbin, ...args.map(String)]
const py = (...args) => ['python3', path.join(here, 'peer.py'), ...args.map(String)]
const abstract = () => `@net-unix-bench-${process.pid}-${Math.random().toString(36).slice(2)}`
const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0
const pinned = (cmd) => ['taskset', '-c', '0', ...cmd]
const PINNED = '64-byte ping-pong, both processes pinned to CPU 0'

// A contender is [command for a count, probe count]; the probe run sizes the timed runs.
// `per`: ops per count unit (bulk counts MiB, its ops are bytes). `ratios`: baselines shown.
const C_FD = 'C blocking sendmsg/recvmsg'
const NET = 'Node net (Unix path)'
// Not a contender: the bare native calls, no API around them: what any N-API receiver pays.
const FLOOR = 'reference: bare native recvmsg + close loop (no API)'
// Beyond Hare: many messages per native call.
const BATCHED = 'net-unix batched Promise (sendfdsMany/recvfdsMany/closeFds)'
const C_MMSG = 'C batched sendmmsg/recvmmsg (32 per call)'
const BUN_FD = 'net-unix Promise under Bun (sendfds/recvfds)'
const BUN_PP = 'net-unix Promise under Bun (sendmsg/recvmsg)'
const C_DGRAM = 'C blocking send/recv'
const PY_DGRAM = 'Python socket send/recv'
const C_SEQ = 'C blocking sendmsg/recvmsg (seqpacket)'
const C_SEQ_MMSG = 'C batched sendmmsg/recvmmsg (seqpacket, 32 per call)'
const DGRAM_MANY = 'net-unix batched Promise (sendfdsMany/recvfromMany)'
const C_DGRAM_MMSG = 'C batched sendmmsg/recvmmsg (32 per call)'
const CASES = [
  {
    name: 'fd passing, 1 fd/msg, parent → child', unit: 'msgs/s', fds: true, ratios: [C_FD, C_MMSG, 'net-unix Promise (sendfds/recvfds)'],
    contenders: {
      [C_FD]: [(n) => c('fdpass', n, 1), 100000],
      'net-unix Promise (sendfds/recvfds)': [(n) => node('fdpass-async', n, 1), 30000],
      'net-unix sync (sendmsgSync/recvmsgSync)': [(n) => node('fdpass-sync', n, 1), 30000],
      'Python send_fds/recv_fds': [(n) => py('fdpass', n, 1), 30000],
      [FLOOR]: [(n) => node('fdpass-floor', n, 1), 30000],
      [BATCHED]: [(n) => node('fdpass-many', n, 1), 30000],
      ...(hasBun && { [BUN_FD]: [(n) => bun('fdpass-async', n, 1), 30000] }),
      [C_MMSG]: [(n) => c('fdpass-mmsg', n, 1), 100000],
      'Node child_process send(msg, socket)': [(n) => node('fdpass-cp', n), 1500],
    },
  },
  {
    name: 'fd passing, 16 fds/msg, parent → child', unit: 'msgs/s', fds: true, ratios: [C_FD, C_MMSG],
    contenders: {
      [C_FD]: [(n) => c('fdpass', n, 16), 30000],
      'net-unix Promise (sendfds/recvfds)': [(n) => node('fdpass-async', n, 16), 10000],
      'net-unix sync (sendmsgSync/recvmsgSync)': [(n) => node('fdpass-sync', n, 16), 10000],
      [BATCHED]: [(n) => node('fdpass-many', n, 16), 10000],
      [C_MMSG]: [(n) => c('fdpass-mmsg', n, 16), 30000],
      'Python send_fds/recv_fds': [(n) => py('fdpass', n, 16), 10000],
    },
    notApplicable: { 'Node child_process send(msg, socket)': 'one handle per message' },
  },
  {
    name: '64-byte ping-pong between two processes', unit: 'round trips/s', latency: true, ratios: [NET, 'C blocking read/write', 'net-unix Promise (sendmsg/recvmsg)'],
    contenders: {
      'C blocking read/write': [(n) => c('pingpong', n), 5000],
      ...(hasTaskset && {
        // Not a contender: shows how much of C's latency is the VM's cross-CPU wakeup.
        'C blocking read/write, both on CPU 0 (taskset)': [(n) => ['taskset', '-c', '0', ...c('pingpong', n)], 20000],
      }),
      'net-unix Promise (sendmsg/recvmsg)': [(n) => node('pingpong-async', n), 3000],
      [NET]: [(n) => node('pingpong-net', n), 3000],
      ...(hasBun && {
        [BUN_PP]: [(n) => bun('pingpong-async', n), 3000],
        'Bun node:net (Unix path)': [(n) => bun('pingpong-net', n), 3000],
      }),
    },
  },
  ...(hasTaskset ? [{
    // Both processes on one CPU: no cross-CPU wakeups, so this counts CPU per round trip.
    name: PINNED, unit: 'round trips/s', latency: true, ratios: [NET, 'C blocking read/write'],
    contenders: {
      'C blocking read/write': [(n) => pinned(c('pingpong', n)), 20000],
      'Python blocking recv/send': [(n) => pinned(py('pingpong', n)), 10000],
      'net-unix Promise (sendmsg/recvmsg)': [(n) => pinned(node('pingpong-async', n)), 5000],
      [NET]: [(n) => pinned(node('pingpong-net', n)), 5000],
    },
  }] : []),
  {
    name: 'bulk transfer, 64 KiB writes', unit: 'MB/s', per: 2 ** 20, scale: 1e-6, ratios: [NET, 'C blocking read/write'],
    contenders: {
      'C blocking read/write': [(n) => c('bulk', n), 512],
      'net-unix Promise (sendmsg/recvmsg)': [(n) => node('bulk-async', n), 256],
      [NET]: [(n) => node('bulk-net', n), 256],
    },
  },
  {
    name: 'connect + accept + close', unit: 'conns/s', failures: true, ratios: [`${NET}, 32 clients`, 'C blocking, one client'],
    contenders: {
      'C blocking, one client': [(n) => c('connect', n, abstract()), 20000],
      'net-unix Promise, 32 clients': [(n) => node('connect-async', n), 10000],
      [`${NET}, 32 clients`]: [(n) => node('connect-net', n), 5000],
    },
  },
  {
    name: '64-byte datagrams, parent → child (SOCK_DGRAM socketpair)', unit: 'datagrams/s', ratios: [C_DGRAM, PY_DGRAM, C_DGRAM_MMSG],
    contenders: {
      [C_DGRAM]: [(n) => c('dgram', n), 200000],
      'net-unix Promise (send/recvfrom)': [(n) => node('dgram-async', n), 50000],
      'net-unix sync (sendSync/recvfromSync)': [(n) => node('dgram-sync', n), 50000],
      'net-unix Promise send, createSocket receiver (events)': [(n) => node('dgram-events', n), 50000],
      [PY_DGRAM]: [(n) => py('dgram', n), 50000],
      [DGRAM_MANY]: [(n) => node('dgram-many', n), 50000],
      'net-unix batched send (sendfdsMany), createSocket receiver (events)': [(n) => node('dgram-events', n, 'many'), 50000],
      [C_DGRAM_MMSG]: [(n) => c('dgram-mmsg', n), 200000],
      // What the two createSocket rows are up against: named sockets, a 10-deep receive queue.
      'C blocking send/recv, named sockets (as createSocket\'s)': [(n) => c('dgram-named', n), 100000],
    },
  },
  {
    name: 'seqpacket, 1 fd/msg, parent → child', unit: 'msgs/s', fds: true, ratios: [C_SEQ, C_SEQ_MMSG],
    contenders: {
      [C_SEQ]: [(n) => c('fdpass', n, 1, 'seqpacket'), 100000],
      'net-unix Promise (sendfds/recvfds)': [(n) => node('seqpacket-async', n, 1), 30000],
      'Python send_fds/recv_fds': [(n) => py('fdpass', n, 1, 'seqpacket'), 30000],
      [BATCHED]: [(n) => node('seqpacket-many', n, 1), 30000],
      [C_SEQ_MMSG]: [(n) => c('fdpass-mmsg', n, 1, 'seqpacket'), 100000],
    },
  },
]

// The stream rows (UnixSocket, issue 12), side by side with what they must match.
const STREAM = 'net-unix UnixSocket'
CASES.push(
  {
    name: 'stream: fd passing, 1 fd/msg, writeWithFds → \'fds\'', unit: 'msgs/s', fds: true, ratios: [C_FD],
    contenders: {
      [C_FD]: [(n) => c('fdpass', n, 1), 100000],
      [`${STREAM} (writeWithFds / 'fds')`]: [(n) => node('fdpass-stream', n, 1), 30000],
    },
  },
  {
    name: 'stream: 64-byte ping-pong between two processes', unit: 'round trips/s', latency: true, ratios: [NET],
    contenders: {
      [STREAM]: [(n) => node('pingpong-stream', n), 3000],
      [NET]: [(n) => node('pingpong-net', n), 3000],
    },
  },
  ...(hasTaskset
    ? [{
        name: 'stream: 64-byte ping-pong, both processes on CPU 0 (taskset)', unit: 'round trips/s', latency: true, ratios: [NET],
        contenders: {
          [STREAM]: [(n) => ['taskset', '-c', '0', ...node('pingpong-stream', n)], 3000],
          [NET]: [(n) => ['taskset', '-c', '0', ...node('pingpong-net', n)], 3000],
        },
      }]
    : []),
  {
    name: 'stream: bulk transfer, 64 KiB writes', unit: 'MB/s', per: 2 ** 20, scale: 1e-6, ratios: [NET],
    contenders: {
      [STREAM]: [(n) => node('bulk-stream', n), 256],
      [NET]: [(n) => node('bulk-net', n), 256],
    },
  },
)
// BENCH_ONLY=regex runs only the cases whose name matches (e.g. BENCH_ONLY=^stream).
const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : null
const chosen = only ? CASES.filter((cs) => only.test(cs.name)) : CASES

/** One run: its rate in ops/s, fds received, failures by code; null if it failed. */
function runOnce([cmd, ...args]) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 120_000, killSignal: 'SIGKILL' })
  try {
    if (r.status !== 0) throw new Error(r.error?.message || `exit ${r.status ?? r.signal}`)
    const j = JSON.parse(r.stdout.trim().split('\n').pop())
    const s = j.ns / 1e9
    return { rate: j.ops / s, fdRate: j.fds === undefined ? undefined : j.fds / s, failures: j.failures || {}, ops: j.ops }
  } catch (e) {
    process.stderr.write(`\n  ${cmd} ${args.join(' ')}: ${e.message}\n`)
    return null
  }
}

const progress = (text) => {
  if (process.stderr.isTTY) process.stderr.write(`\r${text}`.padEnd(100).slice(0, 100))
  else process.stderr.write(`${text}\n`)
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const rotate = (xs, k) => xs.map((_, i) => xs[(i + k) % xs.length])

const loadBefore = os.loadavg()
const started = Date.now()

// Calibration (also a warm-up): each contender's count for ~SECONDS per run.
const counts = new Map()
for (const cs of chosen) {
  for (const [who, [cmd, probe]] of Object.entries(cs.contenders)) {
    progress(`calibrating: ${cs.name}: ${who}`)
    const r = runOnce(cmd(probe))
    const n = r ? Math.round((r.rate * SECONDS) / (cs.per || 1)) : probe
    counts.set(`${cs.name}\0${who}`, Math.max(probe, n))
  }
}

const samples = new Map() // "case\0contender" -> { rates, fdRates, failures, ops }
for (let rep = 0; rep < REPS; rep++) {
  for (const cs of chosen) {
    for (const who of rotate(Object.keys(cs.contenders), rep)) {
      progress(`rep ${rep + 1}/${REPS}: ${cs.name}: ${who}`)
      const key = `${cs.name}\0${who}`
      const s = samples.get(key) || { rates: [], fdRates: [], failures: {}, ops: 0 }
      samples.set(key, s)
      const r = runOnce(cs.contenders[who][0](counts.get(key)))
      if (!r) continue
      s.rates.push(r.rate)
      if (r.fdRate !== undefined) s.fdRates.push(r.fdRate)
      s.ops += r.ops
      for (const [code, n] of Object.entries(r.failures)) s.failures[code] = (s.failures[code] || 0) + n
    }
  }
}
// The restart section (issue 23): not a rate, so run once per contender, side by side, the same
// app and the same autocannon load (bench/restart.js); BENCH_ONLY=^restart runs only it.
const RESTART = 'restart: an HTTP server replaced under load (keep-alive + new-connection autocannon clients)'
const RESTART_REPLACEMENTS = Number(process.env.BENCH_RESTARTS || 10)
// 4 s apart: ten replacements then carry ≥ 100,000 requests on this 2-core machine (the target's floor).
const RESTART_INTERVAL = Number(process.env.BENCH_RESTART_INTERVAL_MS || 4000)
const RESTARTERS = {
  'net-unix handover()': 'handover',
  'plain stop/start (server.close(), then a new process)': 'plain',
  'SO_REUSEPORT overlap (Node 22 reusePort; new up, old closed)': 'reuseport',
  'pm2 reload, cluster mode, 2 instances': 'pm2',
}
const restartResults = new Map()
if (!only || only.test(RESTART)) {
  for (const [who, scenario] of Object.entries(RESTARTERS)) {
    progress(`${RESTART.split(':')[0]}: ${who}`)
    const r = spawnSync(process.execPath, [path.join(here, 'restart.js'), scenario, RESTART_REPLACEMENTS, RESTART_INTERVAL], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 600_000,
      killSignal: 'SIGKILL',
    })
    try {
      restartResults.set(who, JSON.parse(r.stdout.trim().split('\n').pop()))
    } catch {
      process.stderr.write(`\n  restart ${scenario}: exit ${r.status ?? r.signal}\n`)
    }
  }
}
if (process.stderr.isTTY) process.stderr.write('\r'.padEnd(101) + '\r')
const loadAfter = os.loadavg()

// ---- report
const fmt = (n) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n >= 10 ? n.toFixed(1) : n.toFixed(2))
const rateOf = (cs, who) => {
  const s = samples.get(`${cs.name}\0${who}`)
  return s && s.rates.length ? median(s.rates) : NaN
}
const lines = []
for (const cs of chosen) {
  const head = [`median ${cs.unit}`]
  if (cs.fds) head.push('fds/s')
  if (cs.latency) head.push('latency µs')
  head.push('spread')
  for (const b of cs.ratios) head.push(cs.latency ? `latency × ${b}` : `× ${b}`)
  if (cs.failures) head.push(`failed attempts, all ${REPS} reps (retried)`)
  lines.push(`### ${cs.name}`, '', `| | ${head.join(' | ')} |`, `|---|${head.map(() => '---:').join('|')}|`)
  for (const who of Object.keys(cs.contenders)) {
    const s = samples.get(`${cs.name}\0${who}`)
    const rate = rateOf(cs, who)
    if (!Number.isFinite(rate)) {
      lines.push(`| ${who} | ${head.map(() => 'failed').join(' | ')} |`)
      continue
    }
    const row = [fmt(rate * (cs.scale || 1))]
    if (cs.fds) row.push(fmt(median(s.fdRates)))
    if (cs.latency) row.push((1e6 / rate).toFixed(1))
    row.push(`±${((50 * (Math.max(...s.rates) - Math.min(...s.rates))) / rate).toFixed(0)}%`)
    for (const b of cs.ratios) {
      const base = rateOf(cs, b)
      row.push(`${(cs.latency ? base / rate : rate / base).toFixed(2)}×`)
    }
    if (cs.failures) {
      const total = Object.values(s.failures).reduce((a, b) => a + b, 0)
      const codes = Object.entries(s.failures).map(([code, n]) => `${n.toLocaleString('en-US')} ${code}`).join(', ')
      row.push(total ? `${codes} (${((1000 * total) / s.ops).toFixed(1)} per 1,000 made)` : '0')
    }
    lines.push(`| ${who} | ${row.join(' | ')} |`)
  }
  for (const [who, why] of Object.entries(cs.notApplicable || {})) lines.push(`| ${who} | n/a: ${why} |`)
  lines.push('')
}

if (restartResults.size) {
  const head = ['requests', 'failed', 'failures by kind', 'replacements', 'mean replacement ms', 'p99 ms keep-alive', 'p99 ms new-connection', 'max ms']
  lines.push(`### ${RESTART}`, '', `| | ${head.join(' | ')} |`, `|---|${head.map(() => '---:').join('|')}|`)
  for (const who of Object.keys(RESTARTERS)) {
    const r = restartResults.get(who)
    if (!r) {
      lines.push(`| ${who} | ${head.map(() => 'failed').join(' | ')} |`)
      continue
    }
    const failed = r.errors + r.timeouts + r.non2xx
    const kinds = Object.entries(r.byCode).map(([code, n]) => `${n.toLocaleString('en-US')} ${code}`).join(', ') || (r.non2xx ? `${r.non2xx} non-2xx` : '—')
    lines.push(`| ${who} | ${r.requests.toLocaleString('en-US')} | ${failed.toLocaleString('en-US')} | ${kinds} | ${r.replacements} | ${Math.round(r.replaceMs)} | ${r.p99KeepAlive} | ${r.p99Fresh} | ${r.max} |`)
  }
  lines.push('')
}

// The targets, judged on the Promise API (sync shown for comparison); a case not run is skipped.
const byName = (word) => chosen.find((cs) => cs.name.startsWith(word))
const ratio = (word, who, base) => {
  const cs = byName(word)
  return cs ? rateOf(cs, who) / rateOf(cs, base) : NaN
}
const connectCase = byName('connect')
const connectFailures = Object.values(samples.get(`${connectCase?.name}\0net-unix Promise, 32 clients`)?.failures || {}).reduce((a, b) => a + b, 0)
const FD1 = 'fd passing, 1 fd'
const FD16 = 'fd passing, 16 fds'
const targets = [
  ['fd passing, 1 fd/msg, Promise API ≥ 0.7× C', ratio(FD1, 'net-unix Promise (sendfds/recvfds)', C_FD), '≥', 0.7],
  ['fd passing, 16 fds/msg, Promise API ≥ 0.8× C', ratio(FD16, 'net-unix Promise (sendfds/recvfds)', C_FD), '≥', 0.8],
  ['fd passing, 1 fd/msg, sync API ≥ 0.85× C', ratio(FD1, 'net-unix sync (sendmsgSync/recvmsgSync)', C_FD), '≥', 0.85],
  ['(for comparison) fd passing, 16 fds/msg, sync API ≥ 0.8× C', ratio(FD16, 'net-unix sync (sendmsgSync/recvmsgSync)', C_FD), '≥', 0.8],
  ['(for comparison) fd passing, 1 fd/msg, bare native loop ≥ 0.7× C', ratio(FD1, FLOOR, C_FD), '≥', 0.7],
  ['fd passing, 1 fd/msg, batched Promise API ≥ 0.9× C per-message', ratio(FD1, BATCHED, C_FD), '≥', 0.9],
  // latency is 1 / round trips per second
  ['ping-pong latency ≤ 1.0× Node net', 1 / ratio('64-byte ping-pong between', 'net-unix Promise (sendmsg/recvmsg)', NET), '≤', 1.0],
  ['ping-pong pinned to one CPU ≥ 1.3× Node net round trips/s', ratio(PINNED, 'net-unix Promise (sendmsg/recvmsg)', NET), '≥', 1.3],
  ['(for comparison) 64-byte datagrams, one Promise per datagram ≥ 0.7× C', ratio('64-byte datagrams', 'net-unix Promise (send/recvfrom)', C_DGRAM), '≥', 0.7],
  ['(for comparison) 64-byte datagrams, one Promise per datagram ahead of Python', ratio('64-byte datagrams', 'net-unix Promise (send/recvfrom)', PY_DGRAM), '≥', 1.0],
  ['(for comparison) 64-byte datagrams, sync API ≥ 0.7× C', ratio('64-byte datagrams', 'net-unix sync (sendSync/recvfromSync)', C_DGRAM), '≥', 0.7],
  ['64-byte datagrams (issue 13), batched Promise API ≥ 0.7× C per datagram', ratio('64-byte datagrams', DGRAM_MANY, C_DGRAM), '≥', 0.7],
  ['64-byte datagrams (issue 13), batched Promise API ahead of Python', ratio('64-byte datagrams', DGRAM_MANY, PY_DGRAM), '≥', 1.0],
  ['(for comparison) seqpacket, 1 fd/msg, one Promise per message ≥ 0.7× C', ratio('seqpacket', 'net-unix Promise (sendfds/recvfds)', C_SEQ), '≥', 0.7],
  ['seqpacket, 1 fd/msg (issue 13), batched Promise API ≥ 0.7× C per message', ratio('seqpacket', BATCHED, C_SEQ), '≥', 0.7],
  [`connect+accept ≥ 1.5× Node net with zero failures (net-unix failures: ${connectFailures})`,
    ratio('connect', 'net-unix Promise, 32 clients', `${NET}, 32 clients`), '≥', 1.5, connectFailures === 0],
  ['stream: bulk 64 KiB writes, UnixSocket ≥ 1.0× Node net', ratio('stream: bulk transfer', STREAM, NET), '≥', 1.0],
  ['stream: ping-pong latency, UnixSocket ≤ 1.0× Node net', 1 / ratio('stream: 64-byte ping-pong between', STREAM, NET), '≤', 1.0],
  ['stream: ping-pong pinned to one CPU, UnixSocket ≥ 1.0× Node net round trips/s',
    ratio('stream: 64-byte ping-pong, both processes', STREAM, NET), '≥', 1.0],
  ["stream: writeWithFds/'fds' 1 fd/msg ≥ 0.5× C", ratio('stream: fd passing', `${STREAM} (writeWithFds / 'fds')`, C_FD), '≥', 0.5],
].filter(([, got]) => Number.isFinite(got)) // cases left out by BENCH_ONLY
const handedOver = restartResults.get('net-unix handover()')
if (handedOver) {
  const failed = handedOver.errors + handedOver.timeouts + handedOver.non2xx
  targets.push([
    `restart: net-unix handover() 0 failed requests across ≥ 10 replacements (${failed} failed of ${handedOver.requests.toLocaleString('en-US')}; ≥ 100,000 wanted)`,
    handedOver.replacements / 10,
    '≥',
    1,
    failed === 0 && handedOver.requests >= 100_000,
  ])
}
lines.push('### Targets', '')
for (const [what, got, op, want, extra = true] of targets) {
  if (Number.isNaN(got)) continue // its case was not selected
  const met = extra && (op === '≥' ? got >= want : got <= want)
  lines.push(`- ${met ? 'met' : '**missed**'}: ${what}: measured ${got.toFixed(2)}×`)
}

const sh = (cmd, args) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n')[0]
  } catch {
    return 'unknown'
  }
}
const cpus = os.cpus()
const facts = [
  `- Date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}; run took ${Math.round((Date.now() - started) / 1000)} s`,
  `- Machine: ${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB; kernel ${sh('uname', ['-r'])}`,
  `- Load average (1 min) before / after: ${loadBefore[0].toFixed(2)} / ${loadAfter[0].toFixed(2)} (the cores are shared with other work: compare ratios, not absolutes)`,
  `- Node ${process.version}, ${sh('python3', ['--version'])}, ${sh('cc', ['--version'])} (\`cc -O2\`)`,
  `- Method: each contender calibrated to ~${SECONDS} s per run, ${REPS} runs interleaved (order rotated per rep); medians. Spread is ±half the min–max range. A run is timed from the first send to the receiver's acknowledgement of the last message (fd receivers close every fd and report how many arrived).`,
]
// The cluster section (bench/cluster.js, its own processes and table): BENCH_ONLY=cluster alone.
const CLUSTER = 'cluster: new connections through the primary'
if (!only || only.test(CLUSTER)) {
  progress(CLUSTER)
  const r = spawnSync(process.execPath, [path.join(here, 'cluster.js')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 })
  lines.push(r.status === 0 ? r.stdout.trim() : `### ${CLUSTER}\n\nfailed: exit ${r.status ?? r.signal}`, '')
}
const table = lines.join('\n')
console.log(`${facts.join('\n')}\n\n${table}`)
fs.writeFileSync(
  path.join(here, only ? 'RESULTS.tmp' : 'RESULTS.md'), // a partial run leaves RESULTS.md alone
  `# Benchmark results (written by \`npm run bench\`)\n\n${facts.join('\n')}\n\n${table}\n\nWhere the time goes when a target is missed: [PROFILE.md](PROFILE.md).\n`,
)
