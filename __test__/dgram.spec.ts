// SOCK_DGRAM: bound by path, abstract name or autobind; sendto/recvfrom with the sender's
// address, fds both ways and credentials; Promise forms and *Sync twins; bad input; Python.
import test from 'ava'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import * as nu from '../index.js'
import { abstractName, fdCount, runPython, startPython, tmpPath } from './helpers'

const read = (fd: number): string => readFileSync(`/proc/self/fd/${fd}`, 'utf8')

test.serial(
  'sendto/recvfrom by path, abstract name and autobind: data, sender address, fds, credentials',
  async (t) => {
    const before = fdCount()
    const path = tmpPath('rx.sock')
    const rx = nu.dgramSocket({ bind: path, credentials: true })
    const named = abstractName('tx')
    const tx = nu.dgramSocket({ bind: named })
    const auto = nu.dgramSocket({ bind: true })
    const autoName = nu.localaddr(auto)
    t.truthy(autoName && autoName[0] === '\0', 'autobind gives an abstract name')
    t.is(nu.localaddr(rx), path)
    t.is(nu.localaddr(tx), named)
    const file = openSync(__filename, 'r')

    t.is(await nu.sendto(tx, Buffer.from('hello'), path, { fds: [file] }), 5)
    const d = await nu.recvfrom(rx, 100, { maxFds: 4, credentials: true })
    t.is(d.data.toString(), 'hello')
    t.is(d.address, named, 'the sender address')
    t.is(d.fds.length, 1)
    t.is(read(d.fds[0]), read(file), 'the fd is the file')
    t.deepEqual(d.cred, { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() })
    t.false(d.truncated)
    t.false(d.dataTruncated)

    // The other way, sync: reply to the address it came from.
    nu.sendtoSync(rx, Buffer.from('reply'), d.address!, { fds: d.fds })
    const back = nu.recvfromSync(tx, 3, { maxFds: 1 })
    t.deepEqual([back.data.toString(), back.dataTruncated, back.address], ['rep', true, path])
    t.is(back.fds.length, 1)

    // An autobound sender is reported by its kernel-picked name; without maxFds, fds are not kept.
    nu.sendtoSync(auto, Buffer.from('auto'), path, { fds: [file] })
    const a = nu.recvfromSync(rx, 10)
    t.deepEqual([a.address, a.fds, a.truncated], [autoName, [], true])

    // Waiting: the receive is pending until a datagram comes.
    const pending = nu.recvfrom(rx, 10)
    t.is(nu.pending(rx), 1)
    await nu.sendto(auto, Buffer.from('later'), path)
    t.is((await pending).data.toString(), 'later')

    ;[rx, tx, auto, ...d.fds, ...back.fds].forEach((fd) => nu.close(fd))
    closeSync(file)
    t.is(fdCount(), before)
  },
)

test.serial('connected datagram sockets: send/sendSync, and credentials only when asked for', async (t) => {
  const before = fdCount()
  const name = abstractName('conn')
  const rx = nu.dgramSocket({ bind: name, credentials: true })
  const tx = nu.dgramSocket({ connect: name })
  await nu.send(tx, Buffer.from('one'), { credentials: true })
  nu.sendSync(tx, Buffer.from('two'))
  const one = await nu.recvfrom(rx, 10, { credentials: true })
  const two = nu.recvfromSync(rx, 10)
  t.deepEqual([one.data.toString(), one.address], ['one', null], 'an unbound sender has no address')
  t.is(one.cred?.pid, process.pid)
  t.deepEqual([two.data.toString(), two.cred], ['two', undefined])
  nu.close(rx)
  // The receiver is gone: ECONNREFUSED, then ENOTCONN (what hot-shots restarts on).
  await t.throwsAsync(nu.send(tx, Buffer.from('x')), { code: 'ECONNREFUSED', message: /^sendmsg ECONNREFUSED/ })
  t.throws(() => nu.sendSync(tx, Buffer.from('x')), { code: 'ENOTCONN' })
  nu.close(tx)
  t.is(fdCount(), before)
})

test.serial('bad input: clear errors, nothing leaked', async (t) => {
  const before = fdCount()
  const path = tmpPath('bad.sock')
  const name = abstractName('bad')
  const rx = nu.dgramSocket({ bind: name })
  const tx = nu.dgramSocket()
  // Nobody there.
  const nobody = abstractName('nobody')
  const refused = await t.throwsAsync(nu.sendto(tx, Buffer.from('x'), nobody), { code: 'ECONNREFUSED' })
  t.is((refused as NodeJS.ErrnoException & { address?: string }).address, nobody)
  const missing = t.throws(() => nu.sendtoSync(tx, Buffer.from('x'), path), {
    code: 'ENOENT',
    message: /^sendmsg ENOENT/,
  })
  t.is((missing as unknown as { address: string }).address, path)
  t.is(missing!.message, `sendmsg ENOENT ${path}`)
  t.throws(() => nu.dgramSocket({ connect: path }), { code: 'ENOENT', message: /^connect ENOENT/ })
  // Too big for one datagram.
  await t.throwsAsync(nu.sendto(tx, Buffer.alloc(4 << 20), name), { code: 'EMSGSIZE' })
  // Binding a name twice; a path that exists is not removed.
  t.throws(() => nu.dgramSocket({ bind: name }), { code: 'EADDRINUSE', message: /^bind EADDRINUSE/ })
  const onPath = nu.dgramSocket({ bind: path })
  t.throws(() => nu.dgramSocket({ bind: path }), { code: 'EADDRINUSE' })
  t.true(existsSync(path))
  // fds on a closed socket, and a closed fd as an fd to pass.
  const closed = nu.dgramSocket()
  nu.close(closed)
  await t.throwsAsync(nu.sendto(closed, Buffer.from('x'), name, { fds: [0] }), { code: 'EBADF' })
  t.throws(() => nu.sendtoSync(tx, Buffer.from('x'), name, { fds: [2 ** 31 - 1] }), { code: 'EBADF' })
  // Argument errors.
  await t.throwsAsync(nu.sendto(tx, 'x' as never, name), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(nu.sendto(tx, Buffer.from('x'), ''), { code: 'ERR_INVALID_UNIX_PATH' })
  await t.throwsAsync(nu.recvfrom(rx, -1), { code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(nu.recvfrom(rx, 1, { maxFds: 254 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => nu.recvfromSync(rx, 1, { credentials: 1 as never }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => nu.dgramSocket({ bind: 5 as never }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => nu.dgramSocket({ flags: 1 }), { code: 'ERR_OUT_OF_RANGE' })
  ;[rx, tx, onPath].forEach((fd) => nu.close(fd))
  t.is(fdCount(), before)
})

test.serial('an aborted recvfrom consumes nothing; close() rejects what waits', async (t) => {
  const name = abstractName('ab')
  const rx = nu.dgramSocket({ bind: name })
  const ac = new AbortController()
  const p = nu.recvfrom(rx, 10, { signal: ac.signal })
  ac.abort()
  await t.throwsAsync(p, { name: 'AbortError' })
  const tx = nu.dgramSocket()
  nu.sendtoSync(tx, Buffer.from('kept'), name)
  t.is((await nu.recvfrom(rx, 10)).data.toString(), 'kept')
  const q = nu.recvfrom(rx, 10)
  nu.close(rx)
  nu.close(tx)
  await t.throwsAsync(q, { code: 'ERR_SOCKET_CLOSED' })
})

test.serial('Python interop over SOCK_DGRAM: fds both ways, sender address, truncation', async (t) => {
  const before = fdCount()
  const name = abstractName('pydg')
  const rx = nu.dgramSocket({ bind: name })
  const file = openSync(__filename, 'r')
  const py = runPython(`
import socket, os, array
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(${JSON.stringify(name + '-py')})
# send_fds ignores its address argument on 3.11: sendmsg with the SCM_RIGHTS item it builds
s.sendmsg([b'to node'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [0, 1]))], 0, ${JSON.stringify(name)})
msg, fds, flags, addr = socket.recv_fds(s, 4, 4)
print(msg.decode(), len(fds), bool(flags & socket.MSG_TRUNC), addr == ${JSON.stringify(name)}.encode())
`)
  const d = await Promise.race([
    nu.recvfrom(rx, 100, { maxFds: 4 }),
    py.then((r) => Promise.reject(new Error(r.stderr))),
  ])
  t.deepEqual([d.data.toString(), d.fds.length, d.address], ['to node', 2, `${name}-py`])
  await nu.sendto(rx, Buffer.from('back to python'), d.address!, { fds: [file, file, file] })
  d.fds.forEach((fd) => nu.close(fd)) // Python's stdin and stdout: its output ends when these close
  const r = await py
  t.is(r.stdout.trim(), 'back 3 True True', r.stderr)
  nu.close(rx)
  closeSync(file)
  t.is(fdCount(), before)
})

test.serial(
  'recvfromMany: a batch in one call, each datagram with its sender, fds, credentials, truncation',
  async (t) => {
    const before = fdCount()
    const path = tmpPath('many.sock')
    const rx = nu.dgramSocket({ bind: path, credentials: true })
    const named = abstractName('many-tx')
    const tx = nu.dgramSocket({ bind: named })
    const anon = nu.dgramSocket()
    const file = openSync(__filename, 'r')
    nu.sendtoSync(tx, Buffer.from('one'), path, { fds: [file] })
    nu.sendtoSync(anon, Buffer.from('two'), path)
    nu.sendtoSync(tx, Buffer.from('three, too long'), path, { fds: [file, file, file] })
    nu.sendtoSync(anon, Buffer.alloc(0), path)

    const got = await nu.recvfromMany(rx, 8, 5, { maxFds: 2, credentials: true })
    t.deepEqual(
      got.map((d) => [d.data.toString(), d.address, d.fds.length, d.truncated, d.dataTruncated]),
      [
        ['one', named, 1, false, false],
        ['two', null, 0, false, false],
        ['three', named, 2, true, true],
        ['', null, 0, false, false],
      ],
    )
    t.true(got.every((d) => d.cred?.pid === process.pid))
    t.is(read(got[0].fds[0]), read(file), 'the fd is the file')

    // Empty queue: it waits, then resolves with what came.
    const pending = nu.recvfromMany(rx, 8, 16)
    t.is(nu.pending(rx), 1)
    nu.sendtoSync(tx, Buffer.from('later'), path)
    t.deepEqual(
      (await pending).map((d) => d.data.toString()),
      ['later'],
    )

    // Aborted: nothing is consumed.
    const ac = new AbortController()
    const aborted = nu.recvfromMany(rx, 8, 16, { signal: ac.signal })
    ac.abort()
    await t.throwsAsync(aborted, { name: 'AbortError' })
    nu.sendtoSync(tx, Buffer.from('kept'), path)
    t.is(nu.recvfromSync(rx, 16).data.toString(), 'kept')

    await t.throwsAsync(nu.recvfromMany(rx, 0, 16), { code: 'ERR_OUT_OF_RANGE' })
    await t.throwsAsync(nu.recvfromMany(rx, nu.MAX_BATCH + 1, 16), { code: 'ERR_OUT_OF_RANGE' })
    await t.throwsAsync(nu.recvfromMany(rx, 4, 0), { code: 'ERR_OUT_OF_RANGE' })
    await t.throwsAsync(nu.recvfromMany(rx, 4, 16, { maxFds: -1 }), { code: 'ERR_OUT_OF_RANGE' })
    const closed = nu.dgramSocket()
    nu.close(closed)
    const ebadf = await t.throwsAsync(nu.recvfromMany(closed, 4, 16), { code: 'EBADF' })
    t.is((ebadf as Error & { syscall?: string }).syscall, 'recvmmsg')

    got.forEach((d) => d.fds.forEach((fd) => nu.close(fd)))
    ;[rx, tx, anon].forEach((fd) => nu.close(fd))
    closeSync(file)
    t.is(fdCount(), before)
  },
)

test.serial('recvfromMany takes what a Python sender queued: ten in one call, then 200 more in order', async (t) => {
  const name = abstractName('pymany')
  const rx = nu.dgramSocket({ bind: name })
  // Ten fill the receive queue (net.unix.max_dgram_qlen); the rest block Python until read.
  const py = startPython(`
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(${JSON.stringify(name + '-py')})
for i in range(10):
    s.sendto(b'%d' % i, ${JSON.stringify(name)})
print('queued', flush=True)
for i in range(10, 210):
    s.sendto(b'%d' % i, ${JSON.stringify(name)})
`)
  t.is(await py.firstLine, 'queued')
  const first = await nu.recvfromMany(rx, 16, 8)
  // Everything queued, in one call (and what Python sent meanwhile, as slots freed up).
  t.true(first.length >= 10, `${first.length}`)
  t.true(first.every((d) => d.address === `${name}-py`))
  const seen = first.map((d) => d.data.toString())
  while (seen.length < 210) for (const d of await nu.recvfromMany(rx, nu.MAX_BATCH, 8)) seen.push(d.data.toString())
  t.is((await py.done).code, 0)
  t.deepEqual(
    seen,
    Array.from({ length: 210 }, (_, i) => String(i)),
  )
  nu.close(rx)
})
