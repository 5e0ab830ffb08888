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
import { fdCount, fdFlags, O_CLOEXEC, startNode, startPython, tmpPath } from './helpers'

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

// The child gets its end of the pair as fd 3 and prints what the received fds contain.
const NODE_RECEIVER = `
const u = require(process.env.NET_UNIX)
const fs = require('fs')
const m = u.newmsg()
const buf = Buffer.alloc(16)
u.addvector(m, buf)
u.allocfiles(m, 3)
const n = u.recvmsgSync(3, m)
const fds = u.recvfiles(m, 3)
const out = fds.map((fd) => { const b = Buffer.alloc(256); return b.toString('utf8', 0, fs.readSync(fd, b, 0, 256, 0)) })
console.log(JSON.stringify({ tag: buf.toString('utf8', 0, n), out }))
`

const PYTHON_RECEIVER = `
import socket, json, os
s = socket.socket(fileno=3)
data, fds, flags, addr = socket.recv_fds(s, 16, 3)
out = [os.pread(fd, 256, 0).decode() for fd in fds]
print(json.dumps({"tag": data.decode(), "out": out}))
`

for (const [who, start] of [
  [
    'a Node child (net-unix sync API)',
    (fd: number) => startNode(NODE_RECEIVER, { stdio: ['ignore', 'pipe', 'pipe', fd] }),
  ],
  [
    'a Python child (socket.recv_fds)',
    (fd: number) => startPython(PYTHON_RECEIVER, { stdio: ['ignore', 'pipe', 'pipe', fd] }),
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
  const child = startNode(NODE_RECEIVER, { stdio: ['ignore', 'pipe', 'pipe', theirs] })
  close(theirs)
  t.is(await sendfds(ours, Buffer.from('async'), fds), 5)
  const result = await child.done
  t.deepEqual(JSON.parse(result.stdout), { tag: 'async', out: texts })
  fds.forEach(closeSync)
  close(ours)
  t.is(fdCount(), before)
})

const PYTHON_SENDER = `
import socket, os, sys
s = socket.socket(fileno=3)
r1, w1 = os.pipe()
os.write(w1, b'through a pipe')
os.close(w1)
path = sys.argv[1]
f = os.open(path, os.O_RDONLY)
socket.send_fds(s, [b'py'], [r1, f])
`

test.serial('fds sent by Python send_fds arrive with recvfds, close-on-exec and readable', async (t) => {
  const before = fdCount()
  const file = tmpPath('py.txt')
  writeFileSync(file, 'a file from python')
  const [ours, theirs] = socketpair()
  const child = startPython(PYTHON_SENDER.replace('sys.argv[1]', JSON.stringify(file)), {
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
  const child = startPython(PYTHON_SENDER.replace('sys.argv[1]', JSON.stringify(file)), {
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
