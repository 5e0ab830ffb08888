import test from 'ava'
import {
  addfiles,
  addvector,
  allocfiles,
  close,
  finish,
  newmsg,
  recvfiles,
  recvmsgSync,
  sendmsg,
  sendmsgSync,
  socketpair,
} from '../index.js'
import { fdCount, inode, runFixture } from './helpers'

function sendWith(fd: number, text: string, ...groups: number[][]): number {
  const m = newmsg()
  addvector(m, Buffer.from(text))
  for (const g of groups) addfiles(m, ...g)
  return sendmsgSync(fd, m)
}

test.serial('several addfiles calls arrive together, in call order', (t) => {
  const before = fdCount()
  const [a, b] = socketpair()
  const [x, y] = socketpair()
  sendWith(a, 'g', [x], [y, x])
  const m = newmsg()
  addvector(m, Buffer.alloc(4))
  allocfiles(m, 2)
  allocfiles(m, 1)
  t.is(recvmsgSync(b, m), 1)
  const got = recvfiles(m, 3)
  t.deepEqual(got.map(inode), [x, y, x].map(inode))
  t.false(m.truncated)
  finish(m)
  ;[...got, a, b, x, y].forEach(close)
  t.is(fdCount(), before)
})

test.serial(
  'a Python receiver sees the fds of several addfiles calls as one SCM_RIGHTS message, in call order',
  async (t) => {
    const [a, b] = socketpair()
    const [x, y] = socketpair()
    const reader = runFixture('msghdr-scm-inodes.py', [], { stdio: ['ignore', 'pipe', 'pipe', b] })
    sendWith(a, 'g', [x], [y, x], [y])
    const r = await reader
    t.is(r.code, 0, r.stderr)
    t.deepEqual(JSON.parse(r.stdout), [[x, y, x, y].map(inode)])
    ;[a, b, x, y].forEach(close)
  },
)

test.serial('finish empties the message: no vectors, fds to send, fd room or truncated flag are left behind', (t) => {
  const before = fdCount()
  const [a, b] = socketpair()
  const [x, y] = socketpair()
  // A receive that leaves truncated set, and fds queued to send as well.
  sendWith(a, 'ab', [x, y])
  const m = newmsg()
  const old = Buffer.alloc(2)
  addvector(m, old)
  allocfiles(m, 1)
  t.is(recvmsgSync(b, m), 2)
  t.true(m.truncated)
  addfiles(m, x)
  finish(m)
  t.false(m.truncated, 'finish clears truncated')
  // Reused, the message is only what is added after finish: one new vector, no fd room.
  const fresh = Buffer.alloc(4)
  addvector(m, fresh)
  sendWith(a, 'cd', [y])
  t.is(recvmsgSync(b, m), 2)
  t.is(fresh.toString('latin1', 0, 2), 'cd', 'the bytes went to the vector added after finish')
  t.is(old.toString(), 'ab', 'the vector from before finish was not used')
  t.deepEqual(recvfiles(m, 1), [], 'finish left no room for fds')
  t.true(m.truncated, 'an fd came with no room for it')
  finish(m)
  // A sending message: the vector and fds added before finish are not sent.
  const s = newmsg()
  addvector(s, Buffer.from('e'))
  addfiles(s, x)
  finish(s)
  addvector(s, Buffer.from('f'))
  t.is(sendmsgSync(a, s), 1)
  const r = newmsg()
  const buf = Buffer.alloc(4)
  addvector(r, buf)
  allocfiles(r, 2)
  t.is(recvmsgSync(b, r), 1)
  t.is(buf.toString('latin1', 0, 1), 'f')
  t.deepEqual(recvfiles(r, 2), [], 'the fds added before finish were not sent')
  t.false(r.truncated)
  ;[a, b, x, y].forEach(close)
  t.is(fdCount(), before)
})

test.serial('recvfiles returns [] when no fds came', (t) => {
  const [a, b] = socketpair()
  sendWith(a, 'plain')
  const m = newmsg()
  addvector(m, Buffer.alloc(8))
  allocfiles(m, 4)
  t.is(recvmsgSync(b, m), 5)
  t.deepEqual(recvfiles(m, 4), [])
  t.false(m.truncated)
  ;[a, b].forEach(close)
})

test.serial('recvfiles hands out at most nfile, and finish closes the rest', (t) => {
  const before = fdCount()
  const [a, b] = socketpair()
  const [x] = socketpair()
  sendWith(a, 'f', [x, x, x, x])
  const m = newmsg()
  addvector(m, Buffer.alloc(1))
  allocfiles(m, 4)
  recvmsgSync(b, m)
  const one = recvfiles(m, 1)
  t.is(one.length, 1)
  t.is(fdCount(), before + 4 + 4) // pair, one of another pair, and 4 received
  finish(m)
  t.is(fdCount(), before + 4 + 1) // the three unclaimed ones are gone
  ;[...one, a, b, x].forEach(close)
})

test.serial('a message reused without finish does not leak the fds of the previous receive', (t) => {
  const before = fdCount()
  const [a, b] = socketpair()
  sendWith(a, '1', [a])
  sendWith(a, '2', [a])
  const m = newmsg()
  addvector(m, Buffer.alloc(1))
  allocfiles(m, 1)
  recvmsgSync(b, m)
  recvmsgSync(b, m)
  finish(m)
  ;[a, b].forEach(close)
  t.is(fdCount(), before)
})

test.serial('too little room for fds sets truncated and keeps what fit', (t) => {
  const before = fdCount()
  const [a, b] = socketpair()
  sendWith(a, 't', [a, a, a, a])
  const m = newmsg()
  addvector(m, Buffer.alloc(1))
  allocfiles(m, 1)
  recvmsgSync(b, m)
  t.true(m.truncated)
  const got = recvfiles(m, 4)
  t.is(got.length, 1)
  finish(m)
  ;[...got, a, b].forEach(close)
  t.is(fdCount(), before)
})

test.serial('fds with no data byte are refused, never silently dropped', async (t) => {
  const [a, b] = socketpair()
  const m = newmsg()
  addfiles(m, a)
  t.throws(() => sendmsgSync(a, m), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' } as object)
  addvector(m, new Uint8Array(0))
  await t.throwsAsync(sendmsg(a, m), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' } as object)
  ;[a, b].forEach(close)
})

test.serial('sending to a closed peer is EPIPE, not a SIGPIPE', async (t) => {
  const [a, b] = socketpair()
  close(b)
  const m = newmsg()
  addvector(m, Buffer.from('x'))
  t.like(
    t.throws(() => sendmsgSync(a, m)),
    { code: 'EPIPE', errno: -32, syscall: 'sendmsg' } as object,
  )
  t.like(await t.throwsAsync(sendmsg(a, m)), { code: 'EPIPE', syscall: 'sendmsg' } as object)
  close(a)
})

test('sends to a closed peer raise no SIGPIPE in a process that listens for it', async (t) => {
  // Node ignores SIGPIPE, so the runner cannot see one; a child (fixtures/msghdr-sigpipe.cjs)
  // that counts them can.
  const r = await runFixture('msghdr-sigpipe.cjs', [], { timeout: 20000 })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), { codes: ['EPIPE', 'EPIPE', 'EPIPE'], pipes: 0 })
})

test.serial('recvmsg reports 0 when the peer closed', (t) => {
  const [a, b] = socketpair()
  close(a)
  const m = newmsg()
  addvector(m, Buffer.alloc(4))
  t.is(recvmsgSync(b, m), 0)
  close(b)
})

test.serial('scatter/gather: several vectors fill in order', (t) => {
  const [a, b] = socketpair()
  const out = newmsg()
  addvector(out, Buffer.from('abc'))
  addvector(out, new TextEncoder().encode('defg'))
  t.is(sendmsgSync(a, out), 7)
  const x = Buffer.alloc(2)
  const y = new Uint8Array(8)
  const inp = newmsg()
  addvector(inp, x)
  addvector(inp, new DataView(y.buffer, 3, 5))
  t.is(recvmsgSync(b, inp), 7)
  t.is(x.toString(), 'ab')
  t.is(Buffer.from(y).toString('latin1'), '\0\0\0cdefg')
  ;[a, b].forEach(close)
})
