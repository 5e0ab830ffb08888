'use strict'
// `npm run bench`: every case side by side in one run, each repeated (BENCH_REPS, default 5)
// with the reps interleaved so machine noise hits all contenders alike; medians and ratios are
// printed and written to bench/RESULTS.md. Checks nothing: it is not a test.
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const REPS = Number(process.env.BENCH_REPS || 5)
const here = __dirname
const cbin = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'net-unix-bench-')), 'peer')
execFileSync('cc', ['-O2', '-o', cbin, path.join(here, 'peer.c')], { stdio: 'inherit' })

const node = (...args) => [process.execPath, path.join(here, 'peer.js'), ...args]
const c = (...args) => [cbin, ...args]
const py = (...args) => ['python3', path.join(here, 'peer.py'), ...args]
const abstract = () => `@net-unix-bench-${process.pid}-${Math.random().toString(36).slice(2)}`

// unit: what one op is; scale turns ops/s into the printed figure.
const CASES = [
  {
    name: 'fd passing, 1 fd/msg', unit: 'msgs/s', baseline: 'C blocking sendmsg/recvmsg',
    contenders: {
      'C blocking sendmsg/recvmsg': () => c('fdpass', '200000', '1'),
      'net-unix Promise (sendfds/recvfds)': () => node('fdpass-async', '100000', '1'),
      'net-unix sync (sendmsgSync/recvmsgSync)': () => node('fdpass-sync', '100000', '1'),
      'Python send_fds/recv_fds': () => py('fdpass', '100000', '1'),
      'Node child_process send(msg, handle)': () => node('fdpass-cp', '5000'),
    },
  },
  {
    name: 'fd passing, 16 fds/msg', unit: 'msgs/s', baseline: 'C blocking sendmsg/recvmsg',
    contenders: {
      'C blocking sendmsg/recvmsg': () => c('fdpass', '50000', '16'),
      'net-unix Promise (sendfds/recvfds)': () => node('fdpass-async', '30000', '16'),
      'net-unix sync (sendmsgSync/recvmsgSync)': () => node('fdpass-sync', '30000', '16'),
      'Python send_fds/recv_fds': () => py('fdpass', '30000', '16'),
    },
  },
  {
    name: '64-byte ping-pong', unit: 'round trips/s', baseline: 'Node net (Unix path)', latency: true,
    contenders: {
      'C blocking read/write': () => c('pingpong', '20000'),
      'net-unix Promise (sendmsg/recvmsg)': () => node('pingpong-async', '20000'),
      'Node net (Unix path)': () => node('pingpong-net', '20000'),
    },
  },
  {
    name: 'bulk transfer, 64 KiB writes', unit: 'MiB/s', scale: 1 / 2 ** 20, baseline: 'Node net (Unix path)',
    contenders: {
      'C blocking read/write': () => c('bulk', '1024'),
      'net-unix Promise (sendmsg/recvmsg)': () => node('bulk-async', '512'),
      'Node net (Unix path)': () => node('bulk-net', '512'),
    },
  },
  {
    name: 'connect + accept + close', unit: 'conns/s', baseline: 'Node net (Unix path)',
    contenders: {
      'C blocking, one client': () => c('connect', '20000', abstract()),
      'net-unix Promise, 32 clients': () => node('connect-async', '20000'),
      'Node net (Unix path), 32 clients': () => node('connect-net', '20000'),
    },
  },
]
// The connect case's Node net contender is named for its concurrency; its baseline is it.
CASES[4].baseline = 'Node net (Unix path), 32 clients'

function runOnce([cmd, ...args]) {
  const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 120_000 })
  const r = JSON.parse(out.trim().split('\n').pop())
  return { rate: r.ops / (r.ns / 1e9), failures: r.failures || 0 }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const samples = new Map() // "case\0contender" -> { rates, failures }
for (let rep = 1; rep <= REPS; rep++) {
  for (const cs of CASES) {
    for (const [who, cmd] of Object.entries(cs.contenders)) {
      process.stderr.write(`\rrep ${rep}/${REPS}: ${cs.name}: ${who}`.padEnd(90))
      const key = `${cs.name}\0${who}`
      const s = samples.get(key) || { rates: [], failures: 0 }
      const r = runOnce(cmd())
      s.rates.push(r.rate)
      s.failures += r.failures
      samples.set(key, s)
    }
  }
}
process.stderr.write('\r'.padEnd(91) + '\r')

const fmt = (n) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1))
const lines = []
const results = {}
for (const cs of CASES) {
  const base = median(samples.get(`${cs.name}\0${cs.baseline}`).rates)
  lines.push(`### ${cs.name}`, '', `| | median ${cs.unit} | ${cs.latency ? 'latency µs | ' : ''}× ${cs.baseline} |`, `|---|---:|${cs.latency ? '---:|' : ''}---:|`)
  for (const who of Object.keys(cs.contenders)) {
    const s = samples.get(`${cs.name}\0${who}`)
    const rate = median(s.rates)
    results[`${cs.name}\0${who}`] = rate / base
    const failures = s.failures ? ` (${s.failures} failed attempts)` : ''
    const latency = cs.latency ? ` ${(1e6 / rate).toFixed(1)} |` : ''
    lines.push(`| ${who}${failures} | ${fmt(rate * (cs.scale || 1))} |${latency} ${(rate / base).toFixed(2)} |`)
  }
  lines.push('')
}

const ratio = (cs, who) => results[`${cs}\0${who}`]
const targets = [
  ['fd passing 1 fd/msg, Promise API ≥ 0.7× C', ratio('fd passing, 1 fd/msg', 'net-unix Promise (sendfds/recvfds)'), 0.7],
  ['fd passing 16 fds/msg, Promise API ≥ 0.8× C', ratio('fd passing, 16 fds/msg', 'net-unix Promise (sendfds/recvfds)'), 0.8],
  // latency is the inverse of round trips/s: ≤ 1.0× net's latency is ≥ 1.0× its rate
  ['ping-pong latency ≤ 1.0× Node net', 1 / ratio('64-byte ping-pong', 'net-unix Promise (sendmsg/recvmsg)'), 1.0, 'max'],
  ['connect+accept ≥ 1.5× Node net, no failures', ratio('connect + accept + close', 'net-unix Promise, 32 clients'), 1.5],
]
lines.push('### Targets', '')
for (const [what, got, want, bound] of targets) {
  const met = bound === 'max' ? got <= want : got >= want
  lines.push(`- ${met ? 'met' : '**missed**'}: ${what} (measured ${got.toFixed(2)}×)`)
}

const cpu = os.cpus()
const facts = [
  `- ${new Date().toISOString().slice(0, 10)}, ${cpu.length} × ${cpu[0]?.model.trim()}, Linux ${os.release()}, Node ${process.version}`,
  `- ${REPS} repetitions per contender, interleaved; medians. Each op is timed from the first send to the peer's acknowledgement of the last.`,
]
const table = lines.join('\n')
console.log(table)
fs.writeFileSync(
  path.join(here, 'RESULTS.md'),
  `# Benchmark results (written by \`npm run bench\`)\n\n${facts.join('\n')}\n\n${table}\n\nSee bench/PROFILE.md for where the time goes.\n`,
)
fs.rmSync(path.dirname(cbin), { recursive: true, force: true })
