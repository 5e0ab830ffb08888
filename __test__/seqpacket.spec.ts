// SOCK_SEQPACKET through the `seqpacket` option: boundaries kept, `dataTruncated` distinct from
// `truncated`, fds per message, accept inheriting the type, and Python on the other end.
import test from 'ava'
import { openSync, closeSync } from 'node:fs'
import * as nu from '../index.js'
import { abstractName, fdCount, msgOf, runFixture } from './helpers'

test.serial(
  'socketpair(seqpacket) keeps message boundaries; a short buffer sets dataTruncated, not truncated',
  async (t) => {
    const before = fdCount()
    const [a, b] = nu.socketpair(nu.seqpacket)
    await nu.sendfds(a, Buffer.from('first'), [])
    await nu.sendfds(a, Buffer.from('second message'), [])
    const one = await nu.recvfds(b, 64, 0)
    t.is(one.data.toString(), 'first', 'one message per receive, not the stream of both')
    t.false(one.dataTruncated)
    const two = await nu.recvfds(b, 6, 0)
    t.is(two.data.toString(), 'second')
    t.true(two.dataTruncated, 'the message was longer than the buffer')
    t.false(two.truncated, 'truncated stays the control-data flag')
    // The rest of a truncated message is gone: the next receive is the next message.
    nu.sendmsgSync(a, msgOf(Buffer.from('third')))
    const msg = nu.newmsg()
    nu.addvector(msg, Buffer.alloc(2))
    t.is(nu.recvmsgSync(b, msg), 2)
    t.true(msg.dataTruncated)
    t.false(msg.truncated)
    nu.finish(msg)
    t.false(msg.dataTruncated, 'finish resets it')
    nu.close(a)
    nu.close(b)
    t.is(fdCount(), before)
  },
)

test.serial('listen/connect/accept with seqpacket: accept inherits it, fds travel with their message', async (t) => {
  const before = fdCount()
  const name = abstractName('seq')
  const l = nu.listen(name, nu.seqpacket, nu.backlog(4))
  const [c, s] = await Promise.all([nu.connect(name, nu.seqpacket), nu.accept(l)])
  const sync = nu.connectSync(name, nu.seqpacket)
  const s2 = nu.acceptSync(l)
  const file = openSync(__filename, 'r')
  await nu.sendfds(c, Buffer.from('with fd'), [file])
  await nu.sendfds(c, Buffer.from('without'), [])
  const r1 = await nu.recvfds(s, 100, 4)
  t.is(r1.data.toString(), 'with fd')
  t.is(r1.fds.length, 1)
  const r2 = await nu.recvfds(s, 100, 4)
  t.deepEqual([r2.data.toString(), r2.fds], ['without', []])
  nu.sendmsgSync(sync, msgOf(Buffer.from('x')))
  t.is((await nu.recvfds(s2, 100, 0)).data.toString(), 'x')
  // A stream client cannot reach a seqpacket listener: the types must match.
  await t.throwsAsync(nu.connect(name), { code: 'ECONNREFUSED' })
  ;[l, c, s, sync, s2, ...r1.fds].forEach((fd) => nu.close(fd))
  closeSync(file)
  t.is(fdCount(), before)
})

test.serial('a listen option that is neither flag, backlog nor seqpacket names all three', (t) => {
  const e = t.throws(() => nu.listen(abstractName(), {} as never), { code: 'ERR_INVALID_ARG_TYPE' })
  t.regex(e!.message, /sockflag, backlog\(n\) or seqpacket/)
})

test.serial('Python interop over SOCK_SEQPACKET: fds both ways, boundaries and truncation', async (t) => {
  const before = fdCount()
  const name = abstractName('pyseq')
  const l = nu.listen(name, nu.seqpacket)
  const py = runFixture('seqpacket-peer.py', [name.slice(1)])
  const conn = await nu.accept(l)
  const file = openSync(__filename, 'r')
  await nu.sendfds(conn, Buffer.from('hello python'), [file, file])
  const back = await nu.recvfds(conn, 100, 4)
  t.is(back.data.toString(), 'from python')
  t.is(back.fds.length, 2, 'Python sent back the two fds it received')
  const next = await nu.recvfds(conn, 3, 0)
  t.deepEqual([next.data.toString(), next.dataTruncated], ['sec', true])
  const r = await py
  t.is(r.stdout.trim(), 'hell 2 True', r.stderr)
  ;[l, conn, ...back.fds].forEach((fd) => nu.close(fd))
  closeSync(file)
  t.is(fdCount(), before)
})

test.serial('batched on seqpacket: sendfdsMany and recvfromMany keep each message and its fds', async (t) => {
  const before = fdCount()
  const [a, b] = nu.socketpair(nu.seqpacket)
  const file = openSync(__filename, 'r')
  await nu.sendfdsMany(a, [
    { data: Buffer.from('first'), fds: [file] },
    { data: Buffer.from('second, cut') },
    { data: Buffer.from('third'), fds: [file, file] },
  ])
  const got = await nu.recvfromMany(b, 8, 6, { maxFds: 2 })
  t.deepEqual(
    got.map((m) => [m.data.toString(), m.fds.length, m.dataTruncated, m.address]),
    [
      ['first', 1, false, null],
      ['second', 0, true, null],
      ['third', 2, false, null],
    ],
  )
  got.forEach((m) => nu.closeFds(m.fds))
  ;[a, b].forEach((fd) => nu.close(fd))
  closeSync(file)
  t.is(fdCount(), before)
})
