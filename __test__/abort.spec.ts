import test from 'ava'
import {
  AbortError,
  accept,
  addfiles,
  addvector,
  allocfiles,
  close,
  connectSync,
  listen,
  newmsg,
  pending,
  recvfds,
  recvmsg,
  recvmsgSync,
  sendfds,
  sendmsg,
  sendmsgSync,
  sockflag,
  socketpair,
  type RecvFdsResult,
} from '../index.js'
import { abstractName, fdCount, inode, within, msgOf } from './helpers'

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
  const err = await t.throwsAsync(within(waiting, 5000, 'the aborted receive'), { instanceOf: AbortError })
  t.is(err?.name, 'AbortError')
  t.is((err as NodeJS.ErrnoException).code, 'ABORT_ERR')
  t.is(err?.cause, reason)
  t.is(pending(b), 0)
  await sendfds(a, Buffer.from('later'), [a])
  const got = await within(recvfds(b, 8, 1), 5000, 'the receive after the abort')
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

test.serial(
  'aborting a pending accept in the turn its connection arrived leaves the connection for the next accept',
  async (t) => {
    const before = fdCount()
    const name = abstractName('abort-accept')
    const l = listen(name)
    const ac = new AbortController()
    const first = accept(l, { signal: ac.signal })
    t.is(pending(l), 1)
    // The connection is queued before the abort; the accept only sees it at the next poll.
    const c = connectSync(name)
    ac.abort()
    await t.throwsAsync(within(first, 5000, 'the aborted accept'), { instanceOf: AbortError })
    const a = await within(
      accept(l, sockflag.NONBLOCK),
      5000,
      'the next accept, for the connection made before the abort',
    )
    sendmsgSync(c, msgOf('hi'))
    const got = newmsg()
    const buf = Buffer.alloc(2)
    addvector(got, buf)
    t.is(recvmsgSync(a, got), 2, 'the accepted socket is the connection made before the abort')
    t.is(buf.toString(), 'hi')
    ;[a, c, l].forEach(close)
    t.is(fdCount(), before)
  },
)

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
    t.is(await within(r, 5000, `receive ${i}`), 1)
  }
  await new Promise((r) => setImmediate(r))
  process.off('warning', onWarning)
  t.deepEqual(
    warnings.map((w) => w.name),
    [],
  )
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
    const results = await within(Promise.allSettled(ops), 5000, `cycle ${i}: the operations pending on a closed socket`)
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
  const results = await within(Promise.allSettled(accepts), 5000, 'the accepts pending on a closed listener')
  t.true(
    results.every((r) => r.status === 'rejected' && (r.reason as NodeJS.ErrnoException).code === 'ERR_SOCKET_CLOSED'),
  )
  t.is(pending(l), 0)
})

test.serial(
  'a receive aborted as its message arrives: the message and its fds come exactly once, aborted or not',
  async (t) => {
    const before = fdCount()
    const [a, b] = socketpair(sockflag.NONBLOCK)
    const [x, y] = socketpair()
    const outcomes = { aborted: 0, completed: 0 }
    for (let i = 0; i < 200; i++) {
      const ac = new AbortController()
      const r = recvfds(b, 8, 2, { signal: ac.signal })
      const m = msgOf(`m${i}`)
      addfiles(m, x, y)
      sendmsgSync(a, m)
      // 0, 1 or 2 turns between the arrival and the abort: the receive may or may not have run.
      for (let k = 0; k < i % 3; k++) await new Promise((resolve) => setImmediate(resolve))
      ac.abort()
      const first = await within(
        r.catch((e: unknown) => e),
        5000,
        `receive ${i}`,
      )
      let got: RecvFdsResult
      if (first instanceof AbortError) {
        outcomes.aborted++
        got = await within(recvfds(b, 8, 2), 5000, `the receive after abort ${i}`)
      } else {
        outcomes.completed++
        got = first as RecvFdsResult
      }
      t.is(got.data.toString(), `m${i}`)
      t.deepEqual(got.fds.map(inode), [x, y].map(inode))
      got.fds.forEach(close)
    }
    t.true(outcomes.aborted > 0 && outcomes.completed > 0, `both sides of the race ran: ${JSON.stringify(outcomes)}`)
    t.like(
      t.throws(() => recvmsgSync(b, msgOf('.'))),
      { code: 'EAGAIN' } as object,
      'nothing is left to read',
    )
    ;[a, b, x, y].forEach(close)
    t.is(fdCount(), before)
  },
)
