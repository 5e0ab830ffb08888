import test from 'ava'
import { close, newmsg, addvector, recvmsgSync, sendmsgSync, socketpair, sockflag } from '../index.js'
import { fdCount, fdFlags, O_CLOEXEC, O_NONBLOCK } from './helpers'

function roundTrip(from: number, to: number, text: string): string {
  const out = newmsg()
  addvector(out, Buffer.from(text))
  sendmsgSync(from, out)
  const buf = Buffer.alloc(64)
  const inp = newmsg()
  addvector(inp, buf)
  const n = recvmsgSync(to, inp)
  return buf.toString('utf8', 0, n)
}

test.serial('socketpair returns a connected pair that talks both ways', (t) => {
  const before = fdCount()
  const [a, b] = socketpair()
  t.not(a, b)
  t.is(roundTrip(a, b, 'ping'), 'ping')
  t.is(roundTrip(b, a, 'pong'), 'pong')
  close(a)
  close(b)
  t.is(fdCount(), before)
})

test.serial('socketpair sockets are close-on-exec and blocking by default', (t) => {
  const [a, b] = socketpair()
  for (const fd of [a, b]) {
    t.truthy(fdFlags(fd) & O_CLOEXEC)
    t.falsy(fdFlags(fd) & O_NONBLOCK)
  }
  close(a)
  close(b)
})

test.serial('NOCLOEXEC turns close-on-exec off, NONBLOCK turns non-blocking on, repeated flags OR', (t) => {
  const [a, b] = socketpair(sockflag.NOCLOEXEC, sockflag.NONBLOCK, sockflag.NOCLOEXEC)
  for (const fd of [a, b]) {
    t.falsy(fdFlags(fd) & O_CLOEXEC)
    t.truthy(fdFlags(fd) & O_NONBLOCK)
  }
  const err = t.throws(() => recvmsgSync(a, newmsg())) as NodeJS.ErrnoException
  t.is(err.code, 'EAGAIN')
  t.is(err.errno, -11)
  t.is(err.syscall, 'recvmsg')
  close(a)
  close(b)
})
