// The specs that exercise readiness (waits, signals, abort, HUP-only fds such as notifyBarrier's
// pipe, the stream's reads) run again here under the poll-thread backend, the one Bun and Deno
// get: the preload makes net-unix choose it before any of them loads the package.
import './fixtures/poll-thread.cjs'
import './abort.spec'
import './eintr.spec'
import './stream.spec'
import './systemd.spec'
import test from 'ava'
import { readdirSync, readFileSync } from 'node:fs'
import * as nu from '../index.js'
import { pythonPath, run, within } from './helpers'
import { readiness } from '../lib/promises'

test('these specs run on the poll-thread backend', (t) => {
  t.is(readiness, 'poll thread')
})

test('a handled signal that interrupts the poll thread (EINTR from epoll_wait) does not end it: I/O goes on', async (t) => {
  let onSignal = (): void => {}
  const signalled = new Promise<void>((resolve) => (onSignal = resolve))
  process.on('SIGUSR2', onSignal) // handled, so it interrupts rather than kills
  const [a, b] = nu.socketpair()
  t.teardown(() => {
    process.off('SIGUSR2', onSignal)
    nu.closeFds([a, b]) // also when an assertion fails: rejects a receive left pending
  })
  const pending = nu.recvfds(b, 16, 1) // waits on the poll thread
  const tid = readdirSync('/proc/self/task').find(
    (id) => readFileSync(`/proc/self/task/${id}/comm`, 'utf8').trim() === 'net-unix poll',
  )
  t.truthy(tid, 'the poll thread runs')
  // tgkill(2): to that thread, not to whichever thread the kernel would pick for the process.
  const r = await run(pythonPath(), ['-c', `import ctypes; ctypes.CDLL(None).syscall(234, ${process.pid}, ${tid}, 12)`])
  t.is(r.code, 0, r.stderr)
  await within(signalled, 5000, 'the SIGUSR2 handler') // delivered, so the poll thread was interrupted
  nu.sendSync(a, Buffer.from('hello'))
  const got = await within(pending, 5000, 'recvfds after the signal')
  t.is(got.data.toString(), 'hello')
})
