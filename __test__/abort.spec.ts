import test from 'ava'
import {
  AbortError,
  accept,
  addvector,
  allocfiles,
  close,
  connectSync,
  listen,
  newmsg,
  pending,
  recvfds,
  recvfiles,
  recvmsg,
  sendfds,
  sendmsg,
  socketpair,
} from '../index.js'
import { abstractName, fdCount } from './helpers'

test.serial('aborting a pending recvmsg consumes nothing: the next receive gets the data and the fd', async (t) => {
  const before = fdCount()
  const [a, b] = socketpair()
  const ac = new AbortController()
  const m = newmsg()
  addvector(m, Buffer.alloc(8))
  allocfiles(m, 1)
  const waiting = recvmsg(b, m, { signal: ac.signal })
  t.is(pending(b), 1)
  const reason = new Error('stop')
  ac.abort(reason)
  const err = await t.throwsAsync(waiting, { instanceOf: AbortError })
  t.is(err?.name, 'AbortError')
  t.is((err as NodeJS.ErrnoException).code, 'ABORT_ERR')
  t.is(err?.cause, reason)
  t.is(pending(b), 0)
  await sendfds(a, Buffer.from('later'), [a])
  const got = await recvfds(b, 8, 1)
  t.is(got.data.toString(), 'later')
  t.is(got.fds.length, 1)
  ;[...got.fds, a, b].forEach(close)
  t.is(fdCount(), before)
})

test.serial('an already-aborted signal rejects without touching the socket', async (t) => {
  const [a, b] = socketpair()
  await sendfds(a, Buffer.from('kept'), [])
  const signal = AbortSignal.abort('why')
  const m = newmsg()
  addvector(m, Buffer.alloc(8))
  const err = await t.throwsAsync(recvmsg(b, m, { signal }), { instanceOf: AbortError })
  t.is(err?.cause, 'why')
  await t.throwsAsync(sendmsg(a, m, { signal }), { instanceOf: AbortError })
  await t.throwsAsync(accept(a, { signal }), { instanceOf: AbortError })
  t.is((await recvfds(b, 8, 0)).data.toString(), 'kept')
  ;[a, b].forEach(close)
})

test.serial('aborting a pending accept leaves the connection for the next accept', async (t) => {
  const name = abstractName('abort-accept')
  const l = listen(name)
  const ac = new AbortController()
  const first = accept(l, { signal: ac.signal })
  ac.abort()
  await t.throwsAsync(first, { instanceOf: AbortError })
  const c = connectSync(name)
  const a = await accept(l)
  t.true(a > 2)
  ;[a, c, l].forEach(close)
})

test.serial('one signal serves 10,000 operations without piling up listeners', async (t) => {
  const warnings: Error[] = []
  const onWarning = (w: Error): number => warnings.push(w)
  process.on('warning', onWarning)
  const [a, b] = socketpair()
  const { signal } = new AbortController()
  const m = newmsg()
  const buf = Buffer.alloc(1)
  addvector(m, buf)
  for (let i = 0; i < 10000; i++) {
    const r = recvmsg(b, m, { signal })
    await sendmsg(a, m, { signal })
    t.is(await r, 1)
  }
  await new Promise((r) => setImmediate(r))
  process.off('warning', onWarning)
  t.deepEqual(warnings.map((w) => w.name), [])
  ;[a, b].forEach(close)
})

test.serial('closing a socket rejects everything pending on it with ERR_SOCKET_CLOSED, 10,000 times', async (t) => {
  const before = fdCount()
  for (let i = 0; i < 10000; i++) {
    const [a, b] = socketpair()
    const m = newmsg()
    addvector(m, Buffer.alloc(4))
    const ops = [recvmsg(b, m), recvfds(b, 4, 1), recvmsg(b, m, { signal: new AbortController().signal })]
    close(b)
    const results = await Promise.allSettled(ops)
    for (const r of results) {
      if (r.status !== 'rejected' || (r.reason as NodeJS.ErrnoException).code !== 'ERR_SOCKET_CLOSED') {
        t.fail(`cycle ${i}: ${JSON.stringify(r)}`)
        return
      }
    }
    close(a)
  }
  t.is(fdCount(), before)
})

test.serial('closing a listener rejects its pending accepts and the process still exits', async (t) => {
  const l = listen(abstractName('close-l'))
  const accepts = Array.from({ length: 100 }, () => accept(l))
  close(l)
  const results = await Promise.allSettled(accepts)
  t.true(results.every((r) => r.status === 'rejected' && (r.reason as NodeJS.ErrnoException).code === 'ERR_SOCKET_CLOSED'))
  t.is(pending(l), 0)
})

test.serial('received fds of an aborted-then-retried receive are not duplicated or lost', async (t) => {
  const before = fdCount()
  const [a, b] = socketpair()
  const [x, y] = socketpair()
  for (let i = 0; i < 200; i++) {
    const ac = new AbortController()
    const r = recvfds(b, 4, 2, { signal: ac.signal })
    ac.abort()
    await t.throwsAsync(r)
    await sendfds(a, Buffer.from('z'), [x, y])
    const got = await recvfds(b, 4, 2)
    t.is(got.fds.length, 2)
    got.fds.forEach(close)
  }
  const m = newmsg()
  addvector(m, Buffer.alloc(1))
  t.deepEqual(recvfiles(m, 1), [])
  ;[a, b, x, y].forEach(close)
  t.is(fdCount(), before)
})
