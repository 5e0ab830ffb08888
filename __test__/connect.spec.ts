import test from 'ava'
import net from 'node:net'
import { AbortError, accept, backlog, close, connect, connectSync, listen, sockflag } from '../index.js'
import { abstractName, fdCount, fdFlags, O_CLOEXEC, O_NONBLOCK, tmpPath } from './helpers'

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

test.serial('connect waits while the backlog is full, where Node net.connect fails with EAGAIN', async (t) => {
  const before = fdCount()
  const { path, l, filler } = fullListener()
  const nodeResult = await nodeConnect(path)
  const settled: number[] = []
  const ours = Array.from({ length: 5 }, (_, i) =>
    connect(path).then((fd) => {
      settled.push(i)
      return fd
    }),
  )
  // Let the retries run for a while: none may fail.
  await new Promise((r) => setTimeout(r, 100))
  t.deepEqual(settled, [])
  // Each accept frees the one queue slot, and exactly one waiting connect then gets in.
  const accepted: number[] = []
  for (let i = 0; i < 6; i++) accepted.push(await accept(l))
  const fds = await Promise.all(ours)
  t.is(nodeResult, 'EAGAIN', 'Node net.connect fails on a full backlog on this machine')
  for (const fd of fds) {
    t.truthy(fdFlags(fd) & O_CLOEXEC)
    t.falsy(fdFlags(fd) & O_NONBLOCK, 'connect gives back a blocking socket unless NONBLOCK was asked')
  }
  ;[...fds, ...accepted, filler, l].forEach(close)
  t.is(fdCount(), before)
})

test.serial('connect on a full backlog gives up after its timeout with ETIMEDOUT and closes its socket', async (t) => {
  const { path, l, filler } = fullListener()
  const before = fdCount()
  const t0 = Date.now()
  const err = await t.throwsAsync(connect(path, { timeout: 150 }))
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
  await t.throwsAsync(p, { instanceOf: AbortError })
  t.is(fdCount(), before)
  ;[filler, l].forEach(close)
})

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
  t.like(await t.throwsAsync(connect(name)), { code: 'ECONNREFUSED', errno: -111, syscall: 'connect', address: name } as object)
  const path = tmpPath('absent')
  t.like(await t.throwsAsync(connect(path)), { code: 'ENOENT', syscall: 'connect', address: path } as object)
  await t.throwsAsync(connect(''), { code: 'ERR_INVALID_UNIX_PATH' } as object)
  t.is(fdCount(), before)
})
