// EINTR is retried inside: a signal handler that fires while a *Sync call blocks never makes the
// call fail. Node installs its handlers with SA_RESTART, under which the kernel restarts socket
// calls by itself; a socket with SO_RCVTIMEO / SO_SNDTIMEO set is the documented exception, so
// the tests set those (from Python, on the shared socket) to make the kernel return EINTR.
import test from 'ava'
import { readFileSync } from 'node:fs'
import {
  close,
  connectSync,
  listen,
  recvfds,
  recvmsgSync,
  sendmsgSync,
  socketpair,
  addvector,
  newmsg,
} from '../index.js'
import { blockedIn, runFixture, startFixture, SYS, tmpPath, waitUntil, within } from './helpers'

const SIGUSR2 = 12

/** Sets 30 s SO_RCVTIMEO and SO_SNDTIMEO on `fd` from a Python child; optionally fills it. */
async function withTimeouts(fd: number, fill = false): Promise<void> {
  const r = await runFixture('eintr-timeouts.py', fill ? ['fill'] : [], { stdio: ['ignore', 'pipe', 'pipe', fd] })
  if (r.code !== 0) throw new Error(`python: ${r.stderr}`)
}

/** The signal is pending on the process (not yet delivered to a thread). */
function signalPending(pid: number, signo: number): boolean {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const bit = 1n << BigInt(signo - 1)
  return ['SigPnd', 'ShdPnd'].some((field) => {
    const m = new RegExp(`^${field}:\\s+([0-9a-f]+)$`, 'm').exec(status)
    return m !== null && (BigInt(`0x${m[1]}`) & bit) !== 0n
  })
}

/**
 * A Node child (fixtures/eintr-call.cjs) runs `call` (a *Sync call on fd 3) with a SIGUSR2
 * handler installed. Once it is blocked in `syscall`, it gets a SIGUSR2; once that is delivered,
 * `release()` lets the call complete. Returns what the call returned (or its error code) and how
 * many SIGUSR2 it handled.
 */
async function interrupted(fd: number, syscall: number, call: 'recvmsg' | 'accept' | 'sendmsg', release: () => void) {
  const child = startFixture('eintr-call.cjs', [call], { stdio: ['ignore', 'pipe', 'pipe', fd] })
  try {
    await within(child.firstLine, 10000, 'the child starting')
    const pid = child.child.pid as number
    await waitUntil(() => blockedIn(pid) === syscall, 10000, `the child blocked in syscall ${syscall}`)
    process.kill(pid, 'SIGUSR2')
    await waitUntil(() => !signalPending(pid, SIGUSR2), 10000, 'SIGUSR2 delivered')
    release()
    const r = await within(child.done, 10000, 'the child after its call was released')
    if (r.code !== 0) throw new Error(`child exited ${r.code ?? r.signal}: ${r.stderr}`)
    return JSON.parse(r.stdout.split('\n')[1]) as { result: unknown; signals: number }
  } finally {
    child.child.kill()
  }
}

test.serial('a signal handled during a blocking recvmsgSync does not fail it: EINTR is retried', async (t) => {
  const [a, b] = socketpair()
  await withTimeouts(b)
  const m = newmsg()
  addvector(m, Buffer.from('data'))
  const out = await interrupted(b, SYS.recvmsg, 'recvmsg', () => sendmsgSync(a, m))
  t.deepEqual(out, { result: 'data', signals: 1 })
  ;[a, b].forEach(close)
})

test.serial('a signal handled during a blocking acceptSync does not fail it: EINTR is retried', async (t) => {
  const path = tmpPath()
  const l = listen(path)
  await withTimeouts(l)
  let c = -1
  const out = await interrupted(l, SYS.accept4, 'accept', () => (c = connectSync(path)))
  t.deepEqual(out, { result: 'accepted', signals: 1 })
  ;[c, l].forEach(close)
})

test.serial(
  'a signal handled during a blocking sendmsgSync on a full socket does not fail it: EINTR is retried',
  async (t) => {
    const [a, b] = socketpair()
    await withTimeouts(a, true)
    let drained: Promise<unknown> = Promise.resolve()
    // A blocked sender wakes when its buffer is mostly empty: read until the child's 'x' arrives.
    const drain = async () => {
      for (;;) {
        const { data } = await recvfds(b, 1 << 20, 0)
        if (data.length === 0 || data[data.length - 1] === 0x78) return
      }
    }
    // One buffer with no fds goes out through send(2), which is sendto.
    const out = await interrupted(a, SYS.sendto, 'sendmsg', () => {
      drained = drain()
    })
    await within(drained, 10000, 'reading up to the x')
    t.deepEqual(out, { result: 1, signals: 1 })
    ;[a, b].forEach(close)
  },
)
