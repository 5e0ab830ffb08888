import test from 'ava'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { ROOT, run } from './helpers'

// Where libuv is not real (Bun), the sync API and connect (timers only) work; the other Promise
// forms reject with ERR_RUNTIME_UNSUPPORTED and never reach the native uv calls.
const script = `
  const u = require(process.env.NET_UNIX)
  const [a, b] = u.socketpair()
  const m = u.newmsg(); u.addvector(m, Buffer.from('sync'))
  u.sendmsgSync(a, m)
  const r = u.newmsg(); const buf = Buffer.alloc(8); u.addvector(r, buf)
  const n = u.recvmsgSync(b, r)
  const name = '\\0net-unix-bun-' + process.pid
  const l = u.listen(name)
  const connected = u.connect(name).then((c) => { const s = u.acceptSync(l); [c, s, l].forEach(u.close); return 'connected' }, (e) => e.code)
  Promise.allSettled([u.recvmsg(b, r), u.accept(a), u.sendfds(a, Buffer.from('x'), []), u.recvfds(b, 1, 0)]).then(async (rs) => {
    console.log(JSON.stringify({ sync: buf.toString('utf8', 0, n), codes: rs.map((x) => x.reason && x.reason.code), connect: await connected }))
  })
`
const expected = { sync: 'sync', codes: Array(4).fill('ERR_RUNTIME_UNSUPPORTED'), connect: 'connected' }

test('under a pretend Bun (Node with process.versions.bun), connect works, the other Promise forms reject with ERR_RUNTIME_UNSUPPORTED, and Sync works', async (t) => {
  // Pretend to be Bun before the package loads: the native uv calls must never be reached.
  const pretend = `Object.defineProperty(process.versions, 'bun', { value: '1.2.0', enumerable: true })\n${script}`
  const r = await run(process.execPath, ['-e', pretend], { cwd: ROOT, env: { ...process.env, NET_UNIX: ROOT }, timeout: 30000 })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), expected)
})

/** The Bun binary of the @oven/bun-linux-x64 dev dependency. */
function bunBinary(): string {
  return join(dirname(require.resolve('@oven/bun-linux-x64/package.json')), 'bin', 'bun')
}

test('under Bun itself, connect works, the other Promise forms reject with ERR_RUNTIME_UNSUPPORTED, and Sync works', async (t) => {
  const bun = bunBinary()
  t.true(existsSync(bun), `${bun}: run npm ci`)
  const r = await run(bun, ['-e', script], { cwd: ROOT, env: { ...process.env, NET_UNIX: ROOT }, timeout: 30000 })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), expected)
})
