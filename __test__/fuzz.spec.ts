// Random interleavings (seeded, fast-check) of send / recv / accept / connect / abort / close,
// and bursts that spend the per-turn budget so operations wait for the next turn, from several
// async tasks on the same fds: every promise settles, with a value or a documented
// error, and every fd is accounted for.
import test from 'ava'
import fc from 'fast-check'
import { closeSync, openSync } from 'node:fs'
import * as nu from '../index.js'
import { abstractName, fdCount } from './helpers'

type Op = {
  task: number
  kind: 'send' | 'recv' | 'burst' | 'accept' | 'connect' | 'abort' | 'closeSender'
  ticks: number
}
const op: fc.Arbitrary<Op> = fc.record({
  task: fc.integer({ min: 0, max: 3 }),
  kind: fc.constantFrom('send', 'recv', 'burst', 'accept', 'connect', 'abort', 'closeSender'),
  ticks: fc.integer({ min: 0, max: 3 }),
})
// What each operation may end with besides success once its fd is closed or it is aborted.
const DOCUMENTED = new Set(['ERR_SOCKET_CLOSED', 'ABORT_ERR', 'EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'EBADF'])
const tick = () => new Promise((resolve) => setImmediate(resolve))

test.serial('random interleavings: every promise settles as documented and no fd is left open', async (t) => {
  const file = openSync(__filename, 'r')
  const before = fdCount()
  let runs = 0
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 30 }), async (ops) => {
      runs++
      // Each run against its own starting count: a run that leaked does not fail the ones after it.
      const base = fdCount()
      let settled: PromiseSettledResult<unknown>[] = []
      const name = abstractName('fuzz')
      const listener = nu.listen(name, nu.backlog(4))
      const [sender, receiver] = nu.socketpair()
      let senderOpen = true
      const started: Promise<unknown>[] = []
      const controllers: AbortController[] = []
      const owned: number[] = [] // fds handed to us by successful operations
      const track = (p: Promise<unknown>, take: (v: unknown) => number[]) => {
        started.push(p.then((v) => owned.push(...take(v))))
      }
      const tasks = [0, 1, 2, 3].map(async (task) => {
        for (const o of ops.filter((x) => x.task === task)) {
          for (let i = 0; i < o.ticks; i++) await tick()
          const controller = new AbortController()
          controllers.push(controller)
          const signal = controller.signal
          switch (o.kind) {
            case 'send':
              if (senderOpen) track(nu.sendfds(sender, Buffer.from('x'), [file], { signal }), () => [])
              break
            case 'recv':
              track(nu.recvfds(receiver, 1, 1, { signal }), (v) => (v as nu.RecvFdsResult).fds)
              break
            case 'burst':
              // More than the 32 immediate completions a loop turn allows.
              for (let i = 0; i < 24; i++) {
                if (senderOpen) track(nu.sendfds(sender, Buffer.from('x'), [file], { signal }), () => [])
                track(nu.recvfds(receiver, 1, 1, { signal }), (v) => (v as nu.RecvFdsResult).fds)
              }
              break
            case 'accept':
              track(nu.accept(listener, { signal }), (v) => [v as number])
              break
            case 'connect':
              track(nu.connect(name, { signal }), (v) => [v as number])
              break
            case 'abort':
              controllers[Math.floor(controllers.length / 2)]?.abort()
              break
            case 'closeSender':
              // Once closed, the number may be reused by an accept: no task touches it again.
              if (senderOpen) {
                senderOpen = false
                nu.close(sender)
              }
              break
          }
        }
      })
      try {
        await Promise.all(tasks)
      } finally {
        // End of the run, failed or not: closing what is left settles everything still waiting,
        // and every fd the run got is closed, so the next run (and a shrunk one) starts clean.
        if (senderOpen) nu.close(sender)
        nu.close(receiver)
        nu.close(listener)
        settled = await Promise.allSettled(started)
        owned.forEach((fd) => nu.close(fd))
      }
      for (const r of settled) {
        if (r.status === 'rejected') {
          const code = (r.reason as NodeJS.ErrnoException).code ?? String(r.reason)
          if (!DOCUMENTED.has(code)) throw new Error(`undocumented rejection ${code}: ${String(r.reason)}`)
        }
      }
      const now = fdCount()
      if (now !== base) throw new Error(`fd count ${now}, expected ${base}, after ${JSON.stringify(ops)}`)
    }),
    { seed: 20261125, numRuns: 60 },
  )
  t.is(fdCount(), before)
  closeSync(file)
  t.is(runs, 60)
})
