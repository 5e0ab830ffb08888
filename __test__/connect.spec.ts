import test from 'ava'
import net from 'node:net'
import {
  AbortError,
  accept,
  acceptSync,
  addvector,
  backlog,
  close,
  connect,
  connectSync,
  listen,
  newmsg,
  recvmsgSync,
  sendmsgSync,
  sockflag,
} from '../index.js'
import { abstractName, fdCount, fdFlags, O_CLOEXEC, O_NONBLOCK, tmpPath, within, msgOf } from './helpers'

/** A listener whose queue (backlog 0: one connection) is already full. */
function fullListener(): { path: string; l: number; filler: number } {
  const path = tmpPath()
  const l = listen(path, backlog(0))
  const filler = connectSync(path)
  return { path, l, filler }
}

/** What Node's own net.connect does against the same full listener. */
function nodeConnect(path: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(path)
    s.on('connect', () => {
      s.destroy()
      resolve('connected')
    })
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'))
  })
}

test.serial(
  'connect waits while the backlog is full (Node net.connect fails with EAGAIN); each freed slot lets in exactly one, in call order',
  async (t) => {
    const before = fdCount()
    const { path, l, filler } = fullListener()
    const nodeResult = await within(nodeConnect(path), 5000, 'Node net.connect')
    const settled: number[] = []
    let onSettle = (): void => {}
    const ours = Array.from({ length: 5 }, (_, i) =>
      connect(path).then((fd) => {
        settled.push(i)
        onSettle()
        return fd
      }),
    )
    // Resolves once `n` connects have settled, also when they did before it was asked (a connect
    // can get in while the accept that freed its slot is still resolving).
    const settledCount = (n: number) =>
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (settled.length >= n) resolve()
          else onSettle = check
        }
        check()
      })
    // Let the retries run for a while: none may get in, none may fail.
    await new Promise((r) => setTimeout(r, 100))
    t.deepEqual(settled, [])
    const accepted = [await within(accept(l, sockflag.NONBLOCK), 5000, 'accepting the filler')]
    for (let i = 0; i < 5; i++) {
      // The accept freed the one queue slot: exactly one waiting connect gets in, the earliest.
      await within(settledCount(i + 1), 5000, `a waiting connect after slot ${i} freed`)
      t.deepEqual(
        settled,
        Array.from({ length: i + 1 }, (_, k) => k),
      )
      accepted.push(await within(accept(l, sockflag.NONBLOCK), 5000, `accepting connect ${i}`))
    }
    const fds = await Promise.all(ours)
    t.is(nodeResult, 'EAGAIN', 'Node net.connect fails on a full backlog on this machine')
    for (const [i, fd] of fds.entries()) {
      t.truthy(fdFlags(fd) & O_CLOEXEC)
      t.falsy(fdFlags(fd) & O_NONBLOCK, 'connect gives back a blocking socket unless NONBLOCK was asked')
      // Connected for real, to the i-th accepted socket after the filler's.
      sendmsgSync(fd, msgOf(`c${i}`))
      const buf = Buffer.alloc(4)
      const m = newmsg()
      addvector(m, buf)
      t.is(buf.toString('latin1', 0, recvmsgSync(accepted[i + 1], m)), `c${i}`)
    }
    ;[...fds, ...accepted, filler, l].forEach(close)
    t.is(fdCount(), before)
  },
)

test.serial('connect on a full backlog gives up after its timeout with ETIMEDOUT and closes its socket', async (t) => {
  const { path, l, filler } = fullListener()
  const before = fdCount()
  const t0 = Date.now()
  const err = await t.throwsAsync(within(connect(path, { timeout: 150 }), 5000, 'connect with a 150 ms timeout'))
  t.like(err, { code: 'ETIMEDOUT', errno: -110, syscall: 'connect', address: path } as object)
  t.true(Date.now() - t0 >= 140)
  t.is(fdCount(), before)
  ;[filler, l].forEach(close)
})

test.serial('aborting a retrying connect rejects with AbortError and closes its socket', async (t) => {
  const { path, l, filler } = fullListener()
  const before = fdCount()
  const ac = new AbortController()
  const p = connect(path, sockflag.NONBLOCK, { signal: ac.signal })
  setTimeout(() => ac.abort(), 30)
  await t.throwsAsync(within(p, 5000, 'the aborted connect'), { instanceOf: AbortError })
  t.is(fdCount(), before)
  ;[filler, l].forEach(close)
})

test.serial(
  'connect with an already-aborted signal rejects at once, opens nothing and never reaches the listener',
  async (t) => {
    const name = abstractName('pre-aborted')
    const l = listen(name, sockflag.NONBLOCK)
    const before = fdCount()
    const err = await t.throwsAsync(within(connect(name, { signal: AbortSignal.abort('no') }), 5000, 'connect'), {
      instanceOf: AbortError,
    })
    t.is(err?.cause, 'no')
    t.is(fdCount(), before)
    t.like(
      t.throws(() => acceptSync(l)),
      { code: 'EAGAIN' } as object,
      'no connection reached the listener',
    )
    close(l)
  },
)

test.serial(
  'timeout: 0 makes one attempt: it connects when there is room and fails with ETIMEDOUT on a full backlog',
  async (t) => {
    const name = abstractName('t0')
    const free = listen(name)
    const c = await within(connect(name, { timeout: 0 }), 5000, 'connect with timeout 0 to a listener with room')
    const { path, l, filler } = fullListener()
    const before = fdCount()
    const err = await t.throwsAsync(
      within(connect(path, { timeout: 0 }), 5000, 'connect with timeout 0 to a full listener'),
    )
    t.like(err, { code: 'ETIMEDOUT', syscall: 'connect', address: path } as object)
    t.is(fdCount(), before)
    ;[c, free, filler, l].forEach(close)
  },
)

test.serial(
  'a connect waiting on a full backlog backs off: little CPU while it waits, in soon after a slot frees',
  async (t) => {
    const { path, l, filler } = fullListener()
    const before = fdCount()
    const cpu = process.cpuUsage()
    const t0 = Date.now()
    const waiting = connect(path)
    // Long enough to reach the longest back-off step (50 ms).
    await new Promise((r) => setTimeout(r, 600))
    const used = process.cpuUsage(cpu)
    const share = (used.user + used.system) / 1000 / (Date.now() - t0)
    t.true(
      share < 0.25,
      `the waiting connect used ${Math.round(share * 100)}% of a CPU: it spins instead of backing off`,
    )
    const first = await within(accept(l), 5000, 'accepting the filler')
    const freed = Date.now()
    const c = await within(waiting, 5000, 'the waiting connect after a slot freed')
    const latency = Date.now() - freed
    t.true(latency < 250, `in ${latency} ms after the slot freed: the back-off is capped at 50 ms`)
    const second = acceptSync(l)
    ;[c, first, second].forEach(close)
    t.is(fdCount(), before)
    ;[filler, l].forEach(close)
  },
)

test.serial('connect with NONBLOCK keeps the socket non-blocking', async (t) => {
  const name = abstractName('nb')
  const l = listen(name)
  const c = await connect(name, sockflag.NONBLOCK, sockflag.NOCLOEXEC)
  t.truthy(fdFlags(c) & O_NONBLOCK)
  t.falsy(fdFlags(c) & O_CLOEXEC)
  ;[c, l].forEach(close)
})

test.serial('connect rejects refused and missing addresses with Node-shaped errors', async (t) => {
  const before = fdCount()
  const name = abstractName('nobody')
  t.like(await t.throwsAsync(connect(name)), {
    code: 'ECONNREFUSED',
    errno: -111,
    syscall: 'connect',
    address: name,
  } as object)
  const path = tmpPath('absent')
  t.like(await t.throwsAsync(connect(path)), { code: 'ENOENT', syscall: 'connect', address: path } as object)
  await t.throwsAsync(connect(''), { code: 'ERR_INVALID_UNIX_PATH' } as object)
  t.is(fdCount(), before)
})
