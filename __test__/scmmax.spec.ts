// SCM_MAX_FD: 253 fds in one message all arrive; 254 is refused before any syscall, so the peer
// receives nothing at all, not a half message.
import test from 'ava'
import { closeSync, openSync } from 'node:fs'
import * as nu from '../index.js'
import { fdCount } from './helpers'

test('MAX_FDS is the kernel limit, 253', (t) => {
  t.is(nu.MAX_FDS, 253)
})

test.serial('253 fds in one message arrive, with sendfds and with the msghdr API', async (t) => {
  const file = openSync(__filename, 'r')
  const [a, b] = nu.socketpair(nu.sockflag.NONBLOCK)
  const before = fdCount()
  await nu.sendfds(a, Buffer.from('m'), Array(253).fill(file))
  const r = await nu.recvfds(b, 1, 253)
  t.is(r.fds.length, 253)
  t.false(r.truncated)
  r.fds.forEach((fd) => nu.close(fd))
  const msg = nu.newmsg()
  nu.addvector(msg, Buffer.from('m'))
  nu.addfiles(msg, ...Array(200).fill(file))
  nu.addfiles(msg, ...Array(53).fill(file))
  t.is(nu.sendmsgSync(a, msg), 1)
  const into = nu.newmsg()
  nu.addvector(into, Buffer.alloc(1))
  nu.allocfiles(into, 253)
  nu.recvmsgSync(b, into)
  t.is(nu.recvfiles(into, 253).map((fd) => (nu.close(fd), fd)).length, 253)
  nu.finish(into)
  t.is(fdCount(), before)
  nu.close(a)
  nu.close(b)
  closeSync(file)
})

test.serial('254 fds are refused with a RangeError before any syscall, and nothing reaches the peer', async (t) => {
  const file = openSync(__filename, 'r')
  const [a, b] = nu.socketpair(nu.sockflag.NONBLOCK)
  const before = fdCount()
  await t.throwsAsync(nu.sendfds(a, Buffer.from('m'), Array(254).fill(file)), {
    instanceOf: RangeError,
    code: 'ERR_OUT_OF_RANGE',
  })
  const msg = nu.newmsg()
  nu.addvector(msg, Buffer.from('m'))
  nu.addfiles(msg, ...Array(253).fill(file))
  t.throws(() => nu.addfiles(msg, file), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => nu.allocfiles(nu.newmsg(), 254), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(nu.recvfds(b, 1, 254), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  // The refused calls sent nothing: the peer has nothing to read.
  const probe = nu.newmsg()
  nu.addvector(probe, Buffer.alloc(1))
  t.throws(() => nu.recvmsgSync(b, probe), { code: 'EAGAIN' })
  t.is(fdCount(), before)
  nu.close(a)
  nu.close(b)
  closeSync(file)
})
