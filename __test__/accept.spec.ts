// The socket a Promise accept returns: its flags, whether the connection was already queued
// (completed at once) or arrived while the accept waited.
import test from 'ava'
import { accept, close, connectSync, listen, pending, sockflag } from '../index.js'
import { abstractName, fdCount, fdFlags, O_CLOEXEC, O_NONBLOCK, within } from './helpers'

const cases: { named: string; flags: sockflag[]; cloexec: boolean; nonblock: boolean }[] = [
  { named: 'no flags', flags: [], cloexec: true, nonblock: false },
  { named: 'NONBLOCK', flags: [sockflag.NONBLOCK], cloexec: true, nonblock: true },
  { named: 'NOCLOEXEC', flags: [sockflag.NOCLOEXEC], cloexec: false, nonblock: false },
  { named: 'NOCLOEXEC | NONBLOCK', flags: [sockflag.NOCLOEXEC | sockflag.NONBLOCK], cloexec: false, nonblock: true },
]

for (const { named, flags, cloexec, nonblock } of cases) {
  test.serial(
    `a Promise accept with ${named} returns a socket that is ${cloexec ? '' : 'not '}close-on-exec and ${nonblock ? 'non-blocking' : 'blocking'}, at once and after waiting`,
    async (t) => {
      const before = fdCount()
      const name = abstractName('accept-flags')
      const l = listen(name)
      // Queued before the call: it completes at once.
      const c1 = connectSync(name)
      const a1 = await within(accept(l, ...flags), 5000, 'accept of a queued connection')
      // Called before the connection: it waits, then completes on readiness.
      const waiting = accept(l, ...flags)
      t.is(pending(l), 1)
      const c2 = connectSync(name)
      const a2 = await within(waiting, 5000, 'a waiting accept')
      for (const fd of [a1, a2]) {
        t.is((fdFlags(fd) & O_CLOEXEC) !== 0, cloexec, `close-on-exec of fd ${fd}`)
        t.is((fdFlags(fd) & O_NONBLOCK) !== 0, nonblock, `O_NONBLOCK of fd ${fd}`)
      }
      ;[a1, a2, c1, c2, l].forEach(close)
      t.is(fdCount(), before)
    },
  )
}
