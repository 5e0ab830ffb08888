import test from 'ava'
import { startNode } from './helpers'

test('two Workers use the library at once, then 20 Workers are terminated with 100 operations waiting and 20 with 100 deferred past the budget', async (t) => {
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
        } else if ('\${mode}' === 'deferred') {
          // 32 immediate completions spend this turn's budget; the next 100 wait for the next turn.
          await null
          u.sendfds(a, Buffer.from('x'.repeat(32)), [])
          for (let i = 0; i < 31; i++) u.recvfds(b, 1, 0)
          for (let i = 0; i < 50; i++) { u.recvfds(b, 1, 0).catch(() => {}); u.sendfds(a, Buffer.from('y'), [a]).catch(() => {}) }
          parentPort.postMessage(u.pending(a) + u.pending(b))
          // Hold the thread so no loop turn runs: terminate() finds them still deferred.
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000)
        } else {
          const l = u.listen('\\\\0net-unix-worker-' + process.pid + '-' + Math.random())
          for (let i = 0; i < 50; i++) { u.recvfds(b, 8, 1).catch(() => {}); u.accept(l).catch(() => {}) }
          parentPort.postMessage('pending')
        }
      })()\`
    const run = (mode) => new Promise((resolve, reject) => {
      const w = new Worker(body(mode), { eval: true })
      w.once('error', reject)
      w.once('message', async (m) => { const code = await w.terminate(); resolve(mode === 'work' ? m : [m, code]) })
    })
    ;(async () => {
      const work = await Promise.all([run('work'), run('work')])
      const ends = []
      for (let i = 0; i < 20; i++) ends.push(await run('pending'), await run('deferred'))
      console.log(JSON.stringify({ work, ends: [...new Set(ends.map(String))] }))
    })()
  `
  const r = await startNode(script, { timeout: 60000 }).done
  t.is(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  t.deepEqual(out.work, [8000, 8000])
  t.deepEqual(out.ends.sort(), ['100,1', 'pending,1'])
})
