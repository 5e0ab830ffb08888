import test from 'ava'
import {
  accept,
  acceptSync,
  addvector,
  close,
  connectSync,
  listen,
  newmsg,
  recvfds,
  recvmsgSync,
  sendfds,
  sendmsgSync,
  sockflag,
  socketpair,
} from '../index.js'
import { abstractName, fdFlags, O_NONBLOCK, startFixture, startPython } from './helpers'

// O_NONBLOCK belongs to the file description, shared with every dup and every process holding
// the socket: a Promise operation must leave it as it found it.

const MiB = 1 << 20

/**
 * Sends all of `buf` with blocking sendmsgSync calls. A blocking sendmsg(2) may still return
 * early when a signal arrives (SIGCHLD of another test's child), reporting what it sent.
 */
function sendAllSync(sock: number, buf: Buffer): number {
  let sent = 0
  while (sent < buf.length) {
    const msg = newmsg()
    addvector(msg, buf.subarray(sent))
    sent += sendmsgSync(sock, msg)
  }
  return sent
}

/** A Python child holding `fd` as its fd 3 that reads `total` bytes slowly, then writes "d". */
function slowReader(fd: number, total: number) {
  return startFixture('blocking-slow-reader.py', [String(total)], { stdio: ['ignore', 'pipe', 'pipe', fd] })
}

test('a receive that waited leaves a blocking socket blocking: sendmsgSync of 4 MiB to a slow reader blocks instead of EAGAIN', async (t) => {
  const [a, b] = socketpair()
  const p = recvfds(a, 1, 0) // nothing sent yet: waits on a watcher
  t.falsy(fdFlags(a) & O_NONBLOCK, 'not even while the receive waits')
  await sendfds(b, Buffer.from('x'), [])
  t.is((await p).data.toString(), 'x')
  t.falsy(fdFlags(a) & O_NONBLOCK)

  const reader = slowReader(b, 4 * MiB)
  close(b)
  t.is(sendAllSync(a, Buffer.alloc(4 * MiB, 1)), 4 * MiB, 'blocking sends, never EAGAIN')
  const r = await reader.done
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout.trim(), String(4 * MiB))
  close(a)
})

test('sendmsgSync of 4 MiB blocks until sent while a recvfds waits on the same socket', async (t) => {
  const [a, b] = socketpair()
  const reader = slowReader(b, 4 * MiB)
  close(b)
  const waiting = recvfds(a, 1, 0) // answered by the reader's "d" once it has everything
  t.is(sendAllSync(a, Buffer.alloc(4 * MiB, 2)), 4 * MiB, 'blocking sends, never EAGAIN')
  t.is((await waiting).data.toString(), 'd')
  t.is((await reader.done).code, 0)
  t.falsy(fdFlags(a) & O_NONBLOCK)
  close(a)
})

test('a child holding the same description keeps blocking reads, during and after our wait', async (t) => {
  const [a, b] = socketpair()
  // The child shares a's description; it reports the flag and then blocks in read() until a
  // byte comes (a non-blocking description raises BlockingIOError at once).
  const py = `
import fcntl, os, sys
sys.stdin.readline()
print('nonblock' if fcntl.fcntl(3, fcntl.F_GETFL) & os.O_NONBLOCK else 'blocking', flush=True)
print(os.read(3, 1).decode(), flush=True)
`
  const child = startPython(py, { stdio: ['pipe', 'pipe', 'pipe', a] })
  const pending = recvfds(a, 1, 0) // our wait is on: a watcher exists on a dup of a
  child.child.stdin?.write('go\n')
  t.is(await child.firstLine, 'blocking')
  // The child is now in (or about to enter) a blocking read; our receive waits too. One byte
  // goes to whichever reads first, the second to the other.
  await sendfds(b, Buffer.from('1'), [])
  await sendfds(b, Buffer.from('2'), [])
  const r = await child.done
  t.is(r.code, 0, r.stderr)
  const childGot = r.stdout.split('\n')[1]
  const ours = (await pending).data.toString()
  t.deepEqual([childGot, ours].sort(), ['1', '2'])
  t.falsy(fdFlags(a) & O_NONBLOCK)
  ;[a, b].forEach(close)
})

test('after an accept waited, acceptSync blocks for the next connection instead of EAGAIN', async (t) => {
  const name = abstractName('acc')
  const l = listen(name)
  const first = accept(l)
  const py = (n: number) => `
import socket, time
cs = []
for i in range(${n}):
    c = socket.socket(socket.AF_UNIX); c.connect(${JSON.stringify(name)}); cs.append(c)
    time.sleep(0.2)  # lets the parent enter acceptSync with nothing queued
`
  const c1 = startPython(py(1))
  const fd1 = await first
  t.is((await c1.done).code, 0)
  t.falsy(fdFlags(l) & O_NONBLOCK, 'the listener is blocking again')
  const c2 = startPython(py(1))
  const fd2 = acceptSync(l) // blocks until the child connects
  t.true(fd2 >= 0)
  t.is((await c2.done).code, 0)
  ;[fd1, fd2, l].forEach(close)
})

test('acceptSync blocks with poll while a Promise accept waits on the same listener, which then gets the next one', async (t) => {
  const name = abstractName('acc2')
  const l = listen(name)
  const waiting = accept(l)
  t.truthy(fdFlags(l) & O_NONBLOCK, 'held non-blocking while our accept waits')
  const py = `
import socket, time
cs = []
time.sleep(0.2)  # the parent is in acceptSync with nothing queued
for i in range(2):
    c = socket.socket(socket.AF_UNIX); c.connect(${JSON.stringify(name)}); cs.append(c)
import sys; sys.stdin.readline()
`
  const child = startPython(py, { stdio: ['pipe', 'pipe', 'pipe'] })
  const sync = acceptSync(l) // EAGAIN only because of our hold: it waits with poll instead
  t.true(sync >= 0)
  const viaPromise = await waiting
  t.true(viaPromise >= 0)
  t.falsy(fdFlags(l) & O_NONBLOCK, 'given back blocking once nothing waits')
  child.child.stdin?.end('\n')
  t.is((await child.done).code, 0)
  ;[sync, viaPromise, l].forEach(close)
})

test('a socket non-blocking by its owner stays non-blocking, and its *Sync calls still say EAGAIN', async (t) => {
  const [a, b] = socketpair(sockflag.NONBLOCK)
  const p = recvfds(a, 1, 0)
  await sendfds(b, Buffer.from('x'), [])
  await p
  t.truthy(fdFlags(a) & O_NONBLOCK)
  const m = newmsg()
  addvector(m, Buffer.alloc(1))
  t.throws(() => recvmsgSync(a, m), { code: 'EAGAIN' })

  const name = abstractName('nb')
  const l = listen(name, sockflag.NONBLOCK)
  const waited = accept(l)
  const c = connectSync(name)
  const s = await waited
  t.truthy(fdFlags(l) & O_NONBLOCK)
  t.throws(() => acceptSync(l), { code: 'EAGAIN' })
  ;[a, b, l, c, s].forEach(close)
})
