'use strict'
// One scenario of the bench's restart section: the same app (restart-app.js, on Node 22 for
// all four, reusePort needs >= 22.12) under the same autocannon load (keep-alive clients and
// new-connection clients, side by side), replaced N times while the load runs. Prints one JSON
// line: requests, failures by kind, latency p99 / max, replacements done.
//   node bench/restart.js <handover|plain|reuseport|pm2> [replacements] [interval ms]
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const autocannon = require('autocannon')
const { nodeBinaries } = require('../scripts/node-majors.js')

const [scenario, nArg = '10', intervalArg = '2000'] = process.argv.slice(2)
const REPLACEMENTS = Number(nArg)
const INTERVAL = Number(intervalArg)
const NODE = nodeBinaries([22])[22]
const APP = path.join(__dirname, 'restart-app.js')
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'net-unix-restart-bench-'))
const children = new Set()
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL')
  fs.rmSync(tmp, { recursive: true, force: true })
})

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** Starts the app; resolves with the child once it serves. */
function app(mode, port) {
  const child = spawn(NODE, [APP, mode, String(port), path.join(tmp, 'control.sock')], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.add(child)
  child.on('exit', () => children.delete(child))
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const ready = new Promise((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
      if (out.includes('"ready":true')) resolve(child)
    })
    child.once('exit', (code) => reject(new Error(`${mode} app exited ${code} before it served`)))
  })
  return { child, ready, exited }
}

// Each scenario: start() the first server, replace() it once (resolves when the old one is gone).
const pm2Bin = path.join(__dirname, '..', 'node_modules', 'pm2', 'bin', 'pm2')
const pm2 = (...args) => {
  const r = spawnSync(NODE, [pm2Bin, ...args], { env: { ...process.env, PM2_HOME: path.join(tmp, 'pm2') }, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`pm2 ${args.join(' ')}: ${r.stderr || r.stdout}`)
}
const SCENARIOS = {
  handover: (port) => {
    let current
    return {
      start: async () => (current = app('handover', port), await current.ready),
      replace: async () => {
        const next = app('handover', port)
        await next.ready
        await current.exited
        current = next
      },
      stop: () => current.child.kill('SIGKILL'),
    }
  },
  plain: (port) => {
    let current
    return {
      start: async () => (current = app('plain', port), await current.ready),
      replace: async () => {
        current.child.kill('SIGTERM')
        await current.exited
        current = app('plain', port)
        await current.ready
      },
      stop: () => current.child.kill('SIGKILL'),
    }
  },
  reuseport: (port) => {
    let current
    return {
      start: async () => (current = app('reuseport', port), await current.ready),
      replace: async () => {
        const next = app('reuseport', port)
        await next.ready
        current.child.kill('SIGTERM')
        await current.exited
        current = next
      },
      stop: () => current.child.kill('SIGKILL'),
    }
  },
  pm2: (port) => ({
    start: async () => pm2('start', APP, '--name', 'bench', '-i', '2', '--', 'pm2', String(port)),
    replace: async () => pm2('reload', 'bench'),
    stop: () => {
      try {
        pm2('kill')
      } catch {}
    },
  }),
}

async function main() {
  const port = await freePort()
  const s = SCENARIOS[scenario](port)
  await s.start()
  // Wait until it answers (pm2 starts its workers after the command returns).
  for (;;) {
    const ok = await new Promise((r) => net.connect(port, '127.0.0.1').on('connect', function () { this.destroy(); r(true) }).on('error', () => r(false)))
    if (ok) break
    await new Promise((r) => setTimeout(r, 50))
  }
  const duration = Math.ceil(((REPLACEMENTS + 1) * INTERVAL) / 1000) + 1
  const errors = {}
  const load = (opts) => {
    const inst = autocannon({ url: `http://127.0.0.1:${port}/`, duration, timeout: 10, ...opts })
    inst.on('reqError', (e) => (errors[e.code || e.message] = (errors[e.code || e.message] || 0) + 1))
    return inst
  }
  const keepAlive = load({ connections: 16 })
  const fresh = load({ connections: 4, headers: { connection: 'close' } })
  let done = 0
  const pauses = []
  const replacing = (async () => {
    for (let i = 0; i < REPLACEMENTS; i++) {
      await new Promise((r) => setTimeout(r, INTERVAL))
      const t0 = performance.now()
      await s.replace()
      pauses.push(performance.now() - t0)
      done++
    }
  })()
  const [a, b] = await Promise.all([keepAlive, fresh])
  await replacing
  s.stop()
  const sum = (k) => a[k] + b[k]
  console.log(
    JSON.stringify({
      scenario,
      requests: a.requests.total + b.requests.total,
      errors: sum('errors'),
      timeouts: sum('timeouts'),
      non2xx: sum('non2xx'),
      byCode: errors,
      p99KeepAlive: a.latency.p99,
      p99Fresh: b.latency.p99,
      max: Math.max(a.latency.max, b.latency.max),
      replacements: done,
      replaceMs: pauses.reduce((x, y) => x + y, 0) / (pauses.length || 1),
    }),
  )
  process.exit(0)
}
main().catch((e) => {
  console.error(e)
  SCENARIOS[scenario]?.(0).stop?.()
  process.exit(1)
})
