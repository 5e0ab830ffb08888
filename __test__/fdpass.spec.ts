import test from 'ava'
import { openSync, readSync, writeFileSync, closeSync } from 'node:fs'
import {
  addfiles,
  addvector,
  allocfiles,
  close,
  finish,
  newmsg,
  recvfds,
  recvfiles,
  recvmsgSync,
  sendfds,
  sendmsgSync,
  socketpair,
} from '../index.js'
import { fdCount, fdFlags, O_CLOEXEC, startFixture, tmpPath } from './helpers'

/** Three files with distinct contents, opened for reading. */
function threeFiles(): { fds: number[]; texts: string[] } {
  const texts = ['alpha', 'bravo', 'charlie'].map((w) => `${w}-${process.pid}`)
  const fds = texts.map((text, i) => {
    const p = tmpPath(`f${i}.txt`)
    writeFileSync(p, text)
    return openSync(p, 'r')
  })
  return { fds, texts }
}

function readFd(fd: number): string {
  const buf = Buffer.alloc(256)
  return buf.toString('utf8', 0, readSync(fd, buf, 0, buf.length, 0))
}

// The child (fixtures/fdpass-receiver.*) gets its end of the pair as fd 3 and prints what the
// received fds contain.
for (const [who, start] of [
  [
    'a Node child (net-unix sync API)',
    (fd: number) => startFixture('fdpass-receiver.cjs', [], { stdio: ['ignore', 'pipe', 'pipe', fd] }),
  ],
  [
    'a Python child (socket.recv_fds)',
    (fd: number) => startFixture('fdpass-receiver.py', [], { stdio: ['ignore', 'pipe', 'pipe', fd] }),
  ],
] as const) {
  test.serial(`three fds passed with sendmsgSync are read by ${who}`, async (t) => {
    const before = fdCount()
    const { fds, texts } = threeFiles()
    const [ours, theirs] = socketpair()
    const child = start(theirs)
    close(theirs)
    const m = newmsg()
    addvector(m, Buffer.from('files'))
    addfiles(m, ...fds)
    t.is(sendmsgSync(ours, m), 5)
    finish(m)
    const result = await child.done
    t.is(result.code, 0, result.stderr)
    t.deepEqual(JSON.parse(result.stdout), { tag: 'files', out: texts })
    fds.forEach(closeSync)
    close(ours)
    t.is(fdCount(), before)
  })
}

test.serial('three fds passed with the Promise sendfds are read by a Node child', async (t) => {
  const before = fdCount()
  const { fds, texts } = threeFiles()
  const [ours, theirs] = socketpair()
  const child = startFixture('fdpass-receiver.cjs', [], { stdio: ['ignore', 'pipe', 'pipe', theirs] })
  close(theirs)
  t.is(await sendfds(ours, Buffer.from('async'), fds), 5)
  const result = await child.done
  t.deepEqual(JSON.parse(result.stdout), { tag: 'async', out: texts })
  fds.forEach(closeSync)
  close(ours)
  t.is(fdCount(), before)
})

test.serial('fds sent by Python send_fds arrive with recvfds, close-on-exec and readable', async (t) => {
  const before = fdCount()
  const file = tmpPath('py.txt')
  writeFileSync(file, 'a file from python')
  const [ours, theirs] = socketpair()
  const child = startFixture('fdpass-sender.py', [file], {
    stdio: ['ignore', 'pipe', 'pipe', theirs],
  })
  close(theirs)
  const got = await recvfds(ours, 16, 4)
  t.is((await child.done).code, 0)
  t.is(got.data.toString(), 'py')
  t.is(got.fds.length, 2)
  t.false(got.truncated)
  for (const fd of got.fds) t.truthy(fdFlags(fd) & O_CLOEXEC)
  const pipeText = Buffer.alloc(64)
  t.is(pipeText.toString('utf8', 0, readSync(got.fds[0], pipeText)), 'through a pipe')
  t.is(readFd(got.fds[1]), 'a file from python')
  got.fds.forEach(close)
  close(ours)
  t.is(fdCount(), before)
})

test.serial('fds from Python received with the msghdr API and recvfiles', async (t) => {
  const before = fdCount()
  const file = tmpPath('py2.txt')
  writeFileSync(file, 'msghdr path')
  const [ours, theirs] = socketpair()
  const child = startFixture('fdpass-sender.py', [file], {
    stdio: ['ignore', 'pipe', 'pipe', theirs],
  })
  close(theirs)
  const m = newmsg()
  const buf = Buffer.alloc(8)
  addvector(m, buf)
  allocfiles(m, 2)
  t.is(recvmsgSync(ours, m), 2)
  t.is((await child.done).code, 0)
  t.false(m.truncated)
  const [first] = recvfiles(m, 1)
  t.true(first > 2)
  const [second] = recvfiles(m, 1)
  t.is(readFd(second), 'msghdr path')
  t.deepEqual(recvfiles(m, 1), [])
  finish(m)
  ;[first, second, ours].forEach(close)
  t.is(fdCount(), before)
})
