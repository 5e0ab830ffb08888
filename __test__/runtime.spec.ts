import test from 'ava'
import { ROOT, run } from './helpers'

test('where libuv is not real (Bun), the Promise API rejects with ERR_RUNTIME_UNSUPPORTED and Sync works', async (t) => {
  // Pretend to be Bun before the package loads: the native uv calls must never be reached.
  const script = `
    Object.defineProperty(process.versions, 'bun', { value: '1.2.0', enumerable: true })
    const u = require('net-unix')
    const [a, b] = u.socketpair()
    const m = u.newmsg(); u.addvector(m, Buffer.from('sync'))
    u.sendmsgSync(a, m)
    const r = u.newmsg(); const buf = Buffer.alloc(8); u.addvector(r, buf)
    const n = u.recvmsgSync(b, r)
    Promise.allSettled([u.recvmsg(b, r), u.accept(a), u.sendfds(a, Buffer.from('x'), []), u.recvfds(b, 1, 0)]).then((rs) => {
      console.log(JSON.stringify({ sync: buf.toString('utf8', 0, n), codes: rs.map((x) => x.reason && x.reason.code) }))
    })
  `
  const r = await run(process.execPath, ['-e', script], { cwd: ROOT })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), { sync: 'sync', codes: Array(4).fill('ERR_RUNTIME_UNSUPPORTED') })
})
