// Race-free peer identity (API.md §11) across real processes: the PID-reuse race itself in a
// PID namespace of its own, SO_PEERPIDFD and SCM_PIDFD from Python peers running with their own
// uid and gid, pidfdWait through the reactor, and no pidfd ever left open by nobody.
import test from 'ava'
import { once } from 'node:events'
import { closeSync, openSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { release } from 'node:os'
import * as nu from '../index.js'
import { pidfdError, procInfo } from '../lib/pidfd'
import { abstractName, fdCount, fdFlags, fixture, O_CLOEXEC, ROOT, start, within } from './helpers'
import type { Started } from './helpers'

const PYTHON = '/usr/bin/python3'
const ID = ['--reuid=1000', '--regid=2000', '--clear-groups']

/**
 * A Python peer as uid 1000 / gid 2000 that runs `body` (with `name`, an abstract address, and
 * `socket`, `os`, `sys` imported), prints "ready", then stays alive until its stdin closes.
 */
function peer(name: string, body: string): Started {
  const script = `import os, socket, sys\nname = ${JSON.stringify(name)}\n${body}\nprint("ready", flush=True)\nsys.stdin.read()`
  return start('/usr/bin/setpriv', [...ID, PYTHON, '-c', script], { stdio: ['pipe', 'pipe', 'pipe'] })
}

async function ended(p: Started): Promise<void> {
  p.child.stdin!.end()
  const r = await p.done
  if (r.code !== 0) throw new Error(`peer failed: ${r.stderr}`)
}

const isCloexec = (fd: number) => (fdFlags(fd) & O_CLOEXEC) !== 0

/** Whether the kernel is at least `major.minor`: pidfd features came in steps (6.5, 6.15, 6.16). */
function kernelAtLeast(major: number, minor: number): boolean {
  const [a, b] = release().split('.').map(Number)
  return a > major || (a === major && b >= minor)
}
/** Pidfd sockets (Linux 6.5): without them, only the error is tested (the last test). */
const serial = kernelAtLeast(6, 5) ? test.serial : test.serial.skip

serial(
  'the PID-reuse race: after the peer exits and an unrelated process gets its pid, peercred names the impostor while the pidfd says the peer exited and cannot signal the impostor',
  async (t) => {
    const name = `net-unix-race-${process.pid}`
    const run = start('unshare', [
      '--pid',
      '--fork',
      '--mount-proc',
      process.execPath,
      fixture('pidfd-race.cjs'),
      ROOT,
      name,
    ])
    const first = JSON.parse(await within(run.firstLine, 20_000, 'the namespace fixture')) as { listening: string }
    // From outside its namespace, this process is a peer the fixture cannot see.
    const c = await nu.connect(first.listening)
    const r = await run.done
    nu.close(c)
    t.is(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!)
    t.is(out.nsPid, 1, 'the fixture is pid 1 of its own namespace')
    t.deepEqual(out.before.cred, { pid: out.peerPid, uid: 1000, gid: 2000 })
    t.deepEqual(out.before.info, { pid: out.peerPid, ppid: 1, uid: 1000, gid: 2000 }, 'pidfdInfo, distinct ids')
    t.true(out.waitPendingWhileAlive, 'pidfdWait waits while the peer lives')
    // Its status: at once while it is an unreaped child; once reaped, from Linux 6.15 on.
    if (kernelAtLeast(6, 15)) t.deepEqual(out.exit, { code: 0, signal: null }, 'and settles with its exit status')
    else t.true(out.exit === null || out.exit.code === 0)
    t.is(out.impostorPid, out.peerPid, 'an unrelated process now has the peer’s pid')
    t.deepEqual(
      out.after.cred,
      { pid: out.impostorPid, uid: 1000, gid: 2000 },
      'peercred: a pid that names the impostor',
    )
    t.deepEqual(out.after.info, { pid: null, ppid: null, uid: null, gid: null }, 'the pidfd: the peer is gone')
    t.deepEqual(
      out.after.exit,
      kernelAtLeast(6, 15) ? { code: 0, signal: null } : null,
      'pidfdWait settles at once, with the status kept (6.15+)',
    )
    t.is(out.signal, 'ESRCH', 'signalling through the pidfd cannot reach the impostor')
    t.true(out.impostorAlive)
    if (kernelAtLeast(6, 16)) {
      t.deepEqual(out.late, { info: { pid: null, ppid: null, uid: null, gid: null }, exit: { code: 0, signal: null } })
    } else {
      t.like(out.late, { error: 'EINVAL' }, 'SO_PEERPIDFD of a reaped peer: EINVAL before 6.16')
    }
    t.is(out.outside.cred.pid, 0, 'SO_PEERCRED: 0 for a peer in a namespace we cannot see')
    t.deepEqual(out.outside.info, { pid: 0, ppid: null, uid: null, gid: null })
  },
)

serial(
  'peerpidfd: close-on-exec, the caller’s, names the peer (uid 1000, gid 2000); signal and wait through it',
  async (t) => {
    const before = fdCount()
    const name = abstractName('peer')
    const l = nu.listen(name)
    const p = peer(name, 's = socket.socket(socket.AF_UNIX)\ns.connect(name)')
    const s = await nu.accept(l)
    const open = fdCount()
    const pidfd = nu.peerpidfd(s)
    t.true(isCloexec(pidfd))
    t.is(fdCount(), open + 1)
    t.deepEqual(nu.pidfdInfo(pidfd), { pid: p.child.pid, ppid: process.pid, uid: 1000, gid: 2000 })
    t.deepEqual(procInfo(pidfd), nu.pidfdInfo(pidfd), 'the /proc fallback says the same')
    let settled = false
    const exited = nu.pidfdWait(pidfd).finally(() => (settled = true))
    await p.firstLine
    t.false(settled)
    nu.pidfdSendSignal(pidfd, 0)
    nu.pidfdSendSignal(pidfd, 'SIGTERM')
    t.deepEqual(await within(exited, 10_000, 'pidfdWait'), { code: null, signal: 'SIGTERM' })
    t.is((await p.done).signal, 'SIGTERM')
    const gone = t.throws(() => nu.pidfdSendSignal(pidfd, 'SIGTERM'), { code: 'ESRCH' })
    t.like(gone, { syscall: 'pidfd_send_signal' })
    ;[pidfd, s, l].forEach(nu.close)
    t.is(fdCount(), before)
  },
)

serial('pidfdWait: abort and close reject it and leave nothing; a pidfd of this process never settles', async (t) => {
  const before = fdCount()
  const [a, b] = nu.socketpair()
  const self = nu.peerpidfd(a)
  t.is(nu.pidfdInfo(self).pid, process.pid)
  const ac = new AbortController()
  const aborted = nu.pidfdWait(self, { signal: ac.signal })
  setImmediate(() => ac.abort())
  await t.throwsAsync(aborted, { code: 'ABORT_ERR' })
  const closing = nu.pidfdWait(self)
  setImmediate(() => nu.close(self))
  await t.throwsAsync(closing, { code: 'ERR_SOCKET_CLOSED' })
  nu.closeFds([a, b])
  t.is(fdCount(), before)
})

serial(
  'SCM_PIDFD on the datagram class: rinfo.pidfd names the sender, and is closed when nobody listens',
  async (t) => {
    const before = fdCount()
    const name = abstractName('dg')
    const pidfds: number[] = []
    const d = nu.createSocket({ type: 'unix_dgram', pidfd: true, credentials: true, fds: true })
    d.bind(name)
    const first = once(d, 'message')
    const p = peer(
      name,
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.connect(name)\nsocket.send_fds(s, [b"hi"], [0])',
    )
    const [msg, rinfo] = (await within(first, 10_000, 'the datagram')) as [Buffer, nu.RemoteInfo]
    t.is(msg.toString(), 'hi')
    t.is(rinfo.fds!.length, 1, 'the fd it sent, apart from its pidfd')
    t.true(isCloexec(rinfo.pidfd!))
    pidfds.push(rinfo.pidfd!)
    t.deepEqual(nu.pidfdInfo(rinfo.pidfd!), { pid: p.child.pid, ppid: process.pid, uid: 1000, gid: 2000 })
    t.is(rinfo.cred!.pid, p.child.pid)
    nu.closeFds([...rinfo.fds!, ...pidfds])
    await p.firstLine
    await ended(p)
    // No 'message' listener: the pidfd (and fds) are closed, not leaked.
    const s = nu.dgramSocket()
    const counted = fdCount()
    // Nobody listens, so no event says they were read: watch the socket's own emit instead.
    let heard = 0
    const allHeard = new Promise<void>((resolve) => {
      const emit = d.emit.bind(d)
      d.emit = (event: string | symbol, ...args: unknown[]): boolean => {
        const listened = emit(event, ...args)
        if (event === 'message' && ++heard === 5) resolve()
        return listened
      }
    })
    for (let i = 0; i < 5; i++) await nu.sendto(s, Buffer.from('x'), name)
    await within(allHeard, 10_000, 'five unheard datagrams read')
    t.is(fdCount(), counted)
    nu.close(s)
    d.close()
    t.is(fdCount(), before)
  },
)

serial('Promise datagram receives take { pidfd: true }; without it no pidfd stays open', async (t) => {
  const before = fdCount()
  const name = abstractName('pdg')
  const r = nu.dgramSocket({ bind: name, pidfd: true })
  const p = peer(
    name,
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\nfor m in [b"a", b"b", b"c", b"d", b"e"]: s.sendto(m, name)',
  )
  await p.firstLine
  const a = await nu.recvfrom(r, 10, { pidfd: true })
  t.is(a.data.toString(), 'a')
  t.deepEqual(nu.pidfdInfo(a.pidfd!), { pid: p.child.pid, ppid: process.pid, uid: 1000, gid: 2000 })
  t.true(isCloexec(a.pidfd!))
  const b = nu.recvfromSync(r, 10, { pidfd: true })
  t.is(nu.pidfdInfo(b.pidfd!).pid, p.child.pid)
  const [c, dd] = await nu.recvfromMany(r, 2, 10, { pidfd: true })
  t.is(nu.pidfdInfo(c.pidfd!).uid, 1000)
  t.is(nu.pidfdInfo(dd.pidfd!).gid, 2000)
  nu.closeFds([a.pidfd!, b.pidfd!, c.pidfd!, dd.pidfd!])
  const counted = fdCount()
  const e = await nu.recvfrom(r, 10)
  t.is(e.data.toString(), 'e')
  t.is(e.pidfd, undefined, 'not asked for: closed')
  t.is(fdCount(), counted)
  await ended(p)
  nu.close(r)
  t.is(fdCount(), before)
})

serial('the Hare API on a socket with SO_PASSPIDFD leaves no pidfd open', async (t) => {
  const before = fdCount()
  const name = abstractName('hare')
  const r = nu.dgramSocket({ bind: name, pidfd: true })
  const s = nu.dgramSocket()
  for (let i = 0; i < 4; i++) await nu.sendto(s, Buffer.from(`m${i}`), name)
  t.is((await nu.recvfds(r, 10, 2)).fds.length, 0)
  const m = nu.newmsg()
  nu.addvector(m, Buffer.alloc(10))
  nu.allocfiles(m, 1)
  await nu.recvmsg(r, m)
  t.deepEqual(nu.recvfiles(m, 1), [])
  nu.finish(m)
  const many = await nu.recvfdsMany(r, 2, 10, 1)
  t.deepEqual(
    many.map((x) => x.fds),
    [[], []],
  )
  nu.closeFds([r, s])
  t.is(fdCount(), before)
})

serial(
  "UnixSocket { pidfd: true }: 'pidfd' comes before the fds and bytes it came with; closed without a listener",
  async (t) => {
    const before = fdCount()
    const name = abstractName('stream')
    const server = nu.createServer({ pidfd: true })
    server.listen(name)
    await once(server, 'listening')
    const conn = once(server, 'connection')
    const p = peer(name, 's = socket.socket(socket.AF_UNIX)\ns.connect(name)\nsocket.send_fds(s, [b"one"], [0])')
    const [sock] = (await conn) as [nu.UnixSocket]
    const events: string[] = []
    let pidfd = -1
    sock.on('pidfd', (fd: number) => {
      events.push('pidfd')
      pidfd = fd
    })
    sock.on('fds', (fds: number[]) => {
      events.push(`fds ${fds.length}`)
      sock.closeFds(fds)
    })
    const [data] = (await once(sock, 'data')) as [Buffer]
    events.push(`data ${data}`)
    t.deepEqual(events, ['pidfd', 'fds 1', 'data one'])
    t.true(isCloexec(pidfd))
    t.deepEqual(nu.pidfdInfo(pidfd), { pid: p.child.pid, ppid: process.pid, uid: 1000, gid: 2000 })
    nu.close(pidfd)
    // Without a 'pidfd' listener the pidfds of further reads are closed.
    sock.removeAllListeners('pidfd')
    const [x, y] = nu.socketpair()
    const s2 = new nu.UnixSocket({ fd: x, pidfd: true })
    await nu.sendfds(y, Buffer.from('z'), [])
    await once(s2, 'data')
    const counted = fdCount() // reading: the reactor's watcher holds its dup of the fd
    for (let i = 0; i < 3; i++) {
      await nu.sendfds(y, Buffer.from('z'), [])
      await once(s2, 'data')
    }
    t.is(fdCount(), counted)
    s2.destroy()
    nu.close(y)
    await ended(p)
    sock.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    t.is(fdCount(), before)
  },
)

serial("createConnection with { pidfd: true }: the server's replies come with its pidfd", async (t) => {
  const before = fdCount()
  const name = abstractName('cc')
  const server = nu.createServer((sock) => sock.on('data', (d) => sock.write(d)))
  server.listen(name)
  await once(server, 'listening')
  const c = nu.createConnection(name, { pidfd: true })
  await once(c, 'connect')
  t.true(isCloexec(c.fd))
  const got = once(c, 'pidfd')
  c.write('ping')
  const [pidfd] = (await got) as [number]
  t.is(nu.pidfdInfo(pidfd).pid, process.pid, 'the server is this process')
  t.true(isCloexec(pidfd))
  const [echo] = (await once(c, 'data')) as [Buffer]
  t.is(echo.toString(), 'ping')
  nu.close(pidfd)
  c.destroy()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  t.is(fdCount(), before)
})

serial('inside worker_threads: fdinfo, adopt, peerpidfd, SCM_PIDFD and pidfdWait of a child', async (t) => {
  const code = `
    const { parentPort } = require('node:worker_threads')
    const { spawn } = require('node:child_process')
    const nu = require(${JSON.stringify(ROOT)})
    ;(async () => {
      const name = '\\0net-unix-worker-pidfd-' + process.pid
      const l = nu.listen(name)
      const child = spawn('${PYTHON}', ['-c', 'import socket, sys\\ns = socket.socket(socket.AF_UNIX)\\ns.connect(' + JSON.stringify(name) + ')\\ns.recv(1)\\ns.send(b"w")\\nsys.stdin.read()'])
      const s = await nu.accept(l)
      // SO_PASSPIDFD is on before the peer sends (it waits for this byte): see the README.
      const kind = nu.fdinfo(s)
      const u = nu.adopt(s, { pidfd: true })
      if (!(u instanceof nu.UnixSocket) || kind.socktype !== 'stream' || !kind.connected) throw new Error('adopt')
      u.write('g')
      const [sent] = await require('node:events').once(u, 'pidfd')
      const peer = nu.peerpidfd(u.fd)
      const info = [nu.pidfdInfo(sent).pid, nu.pidfdInfo(peer).pid]
      const exited = nu.pidfdWait(peer)
      child.stdin.end()
      const how = await exited
      ;[sent, peer, l].forEach(nu.close)
      u.destroy()
      parentPort.postMessage({ info, childPid: child.pid, how })
    })().catch((e) => parentPort.postMessage({ error: String(e && e.stack) }))`
  const w = new Worker(code, { eval: true })
  const [out] = (await within(once(w, 'message'), 20_000, 'the worker')) as [Record<string, unknown>]
  await w.terminate()
  t.is(out.error, undefined, String(out.error))
  t.deepEqual(out.info, [out.childPid, out.childPid])
  t.deepEqual(out.how, { code: 0, signal: null })
})

serial('pidfd functions: bad input', async (t) => {
  const [a, b] = nu.socketpair()
  const d = nu.dgramSocket()
  for (const fn of [nu.peerpidfd, nu.pidfdInfo] as ((x: unknown) => unknown)[]) {
    t.throws(() => fn('3'), { code: 'ERR_INVALID_ARG_TYPE' })
    t.throws(() => fn(-1), { code: 'ERR_OUT_OF_RANGE' })
  }
  t.like(
    t.throws(() => nu.peerpidfd(2 ** 31 - 1), { code: 'EBADF' }),
    { syscall: 'getsockopt' },
  )
  const file = openSync(__filename, 'r')
  t.throws(() => nu.peerpidfd(file), { code: 'ENOTSOCK' })
  t.throws(() => nu.pidfdInfo(file), { code: 'EBADF', message: /not a pidfd/ })
  closeSync(file)
  t.throws(() => nu.peerpidfd(d), { code: 'ENODATA' }, 'not connected')
  t.throws(() => nu.pidfdInfo(a), { code: 'EBADF', message: /not a pidfd/ })
  await t.throwsAsync(nu.pidfdWait(a), { code: 'EBADF', message: /not a pidfd/ })
  await t.throwsAsync(nu.pidfdWait(1.5), { code: 'ERR_OUT_OF_RANGE' })
  const pidfd = nu.peerpidfd(a)
  await t.throwsAsync(nu.pidfdWait(pidfd, 'x' as never), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(nu.pidfdWait(pidfd, { signal: 1 } as never), { code: 'ERR_INVALID_ARG_TYPE' })
  t.like(
    t.throws(() => nu.pidfdSendSignal(a, 0), { code: 'EBADF' }),
    { syscall: 'pidfd_send_signal' },
  )
  t.throws(() => nu.pidfdSendSignal(pidfd, 'SIGNOPE' as never), { instanceOf: TypeError, code: 'ERR_UNKNOWN_SIGNAL' })
  t.throws(() => nu.pidfdSendSignal(pidfd, 99), { code: 'ERR_UNKNOWN_SIGNAL' })
  t.throws(() => nu.pidfdSendSignal(pidfd, {} as never), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => nu.createSocket({ type: 'unix_dgram', pidfd: 1 } as never), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => nu.dgramSocket({ pidfd: 'yes' } as never), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(nu.recvfrom(d, 1, { pidfd: 1 } as never), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => new nu.UnixSocket({ fd: a, pidfd: 'x' } as never), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => nu.adopt(a, { pidfd: 0 } as never), { code: 'ERR_INVALID_ARG_TYPE' })
  nu.closeFds([a, b, d, pidfd])
})

test('a kernel without pidfd sockets gets one error naming Linux 6.5, with the code it gave', (t) => {
  const e = pidfdError(-92, 'getsockopt', 'SO_PEERPIDFD')
  t.like(e, { code: 'ENOPROTOOPT', errno: -92, syscall: 'getsockopt' })
  t.regex(e.message, /SO_PEERPIDFD needs Linux 6\.5 or later/)
  const einval = pidfdError(-22, 'setsockopt', 'SO_PASSPIDFD')
  t.like(einval, { code: 'EINVAL' })
  t.regex(einval.message, /Linux 6\.5/)
  t.is(pidfdError(-9, 'getsockopt', 'SO_PEERPIDFD').message, 'getsockopt EBADF', 'other errors unchanged')
})

if (!kernelAtLeast(6, 5)) {
  test('before Linux 6.5: peerpidfd fails with the kernel’s code and a message naming 6.5', (t) => {
    const [a, b] = nu.socketpair()
    t.throws(() => nu.peerpidfd(a), { message: /Linux 6\.5/ })
    t.throws(() => nu.createSocket({ type: 'unix_dgram', pidfd: true }), { message: /Linux 6\.5/ })
    nu.closeFds([a, b])
  })
}
