import test from 'ava'
import { ROOT, run } from './helpers'

test('where libuv is not real (Bun), connect works, the other Promise forms reject with ERR_RUNTIME_UNSUPPORTED, and Sync works', async (t) => {
  // Pretend to be Bun before the package loads: the native uv calls must never be reached.
  const script = `
    Object.defineProperty(process.versions, 'bun', { value: '1.2.0', enumerable: true })
    const u = require('net-unix')
    const [a, b] = u.socketpair()
    const m = u.newmsg(); u.addvector(m, Buffer.from('sync'))
    u.sendmsgSync(a, m)
    const r = u.newmsg(); const buf = Buffer.alloc(8); u.addvector(r, buf)
    const n = u.recvmsgSync(b, r)
    // connect needs no libuv (timers only): it works there.
    const name = '\\0net-unix-fake-bun-' + process.pid
    const l = u.listen(name)
    const connected = u.connect(name).then((c) => { const s = u.acceptSync(l); [c, s, l].forEach(u.close); return 'connected' }, (e) => e.code)
    Promise.allSettled([u.recvmsg(b, r), u.accept(a), u.sendfds(a, Buffer.from('x'), []), u.recvfds(b, 1, 0)]).then(async (rs) => {
      console.log(JSON.stringify({ sync: buf.toString('utf8', 0, n), codes: rs.map((x) => x.reason && x.reason.code), connect: await connected }))
    })
  `
  const r = await run(process.execPath, ['-e', script], { cwd: ROOT })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), { sync: 'sync', codes: Array(4).fill('ERR_RUNTIME_UNSUPPORTED'), connect: 'connected' })
})
