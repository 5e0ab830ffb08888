// SOCK_DGRAM: bound by path, abstract name or autobind; sendto/recvfrom with the sender's
// address, fds both ways and credentials; Promise forms and *Sync twins; bad input; Python.
import test from 'ava'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import * as nu from '../index.js'
import { abstractName, fdCount, runPython, tmpPath } from './helpers'

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
