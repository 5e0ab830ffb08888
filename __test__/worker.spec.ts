import test from 'ava'
import { startNode } from './helpers'

test('two Workers use the library at once, then 20 Workers are terminated with 100 operations pending', async (t) => {
  const script = `
    const { Worker } = require('worker_threads')
    const body = (mode) => \`
      const u = require(\${JSON.stringify(process.env.NET_UNIX)})
      const { parentPort } = require('worker_threads')
      ;(async () => {
        const [a, b] = u.socketpair()
        if ('\${mode}' === 'work') {
          let n = 0
          for (let i = 0; i < 2000; i++) {
            const r = u.recvfds(b, 8, 1)
            await u.sendfds(a, Buffer.from('ping'), [a])
            const got = await r
            got.fds.forEach(u.close)
            n += got.data.length
          }
          u.close(a); u.close(b)
          parentPort.postMessage(n)
        } else {
          const l = u.listen('\\\\0net-unix-worker-' + process.pid + '-' + Math.random())
          for (let i = 0; i < 50; i++) { u.recvfds(b, 8, 1).catch(() => {}); u.accept(l).catch(() => {}) }
          parentPort.postMessage('pending')
        }
      })()\`
    const run = (mode) => new Promise((resolve, reject) => {
      const w = new Worker(body(mode), { eval: true })
      w.once('error', reject)
      w.once('message', async (m) => { if (mode === 'work') { await w.terminate(); resolve(m) } else { resolve(await w.terminate()) } })
    })
    ;(async () => {
      const work = await Promise.all([run('work'), run('work')])
      const codes = []
      for (let i = 0; i < 20; i++) codes.push(await run('pending'))
      console.log(JSON.stringify({ work, codes: [...new Set(codes)] }))
    })()
  `
  const r = await startNode(script, { timeout: 60000 }).done
  t.is(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  t.deepEqual(out.work, [8000, 8000])
  t.deepEqual(out.codes, [1])
})
