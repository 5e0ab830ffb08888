// fdinfo() and adopt() (API.md §11) against a zoo of fds made by Python (fixtures/fd-zoo.py:
// kinds Node cannot make), each classified, each socket adopted and used end to end with
// Python on the other end, and every refusal leaving the fd open with its flags unchanged.
import test from 'ava'
import * as net from 'node:net'
import * as dgram from 'node:dgram'
import { once } from 'node:events'
import { closeSync, mkdtempSync, openSync, readlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as nu from '../index.js'
import { fdCount, fdFlags, fixture, O_CLOEXEC, start, within } from './helpers'

interface Zoo {
  fds: Map<string, number>
  dir: string
  ctl: number
  done: Promise<unknown>
}

async function zoo(): Promise<Zoo> {
  const dir = mkdtempSync(join(tmpdir(), 'net-unix-zoo-'))
  const [ours, theirs] = nu.socketpair()
  const py = start('python3', [fixture('fd-zoo.py'), dir], { stdio: ['ignore', 'pipe', 'pipe', theirs] })
  nu.close(theirs)
  const r = await within(nu.recvfds(ours, 65536, nu.MAX_FDS), 10_000, 'the zoo')
  const names = JSON.parse(r.data.toString()) as string[]
  if (names.length !== r.fds.length) throw new Error(`${names.length} names, ${r.fds.length} fds`)
  return { fds: new Map(names.map((n, i) => [n, r.fds[i]])), dir, ctl: ours, done: py.done }
}

/** What must not change about an fd that adopt() refused: open, same file, same flags. */
function state(fd: number): string {
  return `${readlinkSync(`/proc/self/fd/${fd}`)} flags ${fdFlags(fd).toString(8)}`
}

test.serial('fdinfo classifies every kind of fd in the zoo, and changes nothing', async (t) => {
  const z = await zoo()
  const f = (n: string) => z.fds.get(n)!
  try {
    const before = new Map([...z.fds].map(([n, fd]) => [n, state(fd)]))
    const info = (n: string) => nu.fdinfo(f(n))
    t.like(info('unix-stream'), {
      type: 'socket',
      domain: 'unix',
      socktype: 'stream',
      listening: false,
      connected: true,
      local: '',
      remote: '',
      cloexec: true,
      nonblock: false,
    })
    t.like(info('unix-seqpacket'), { domain: 'unix', socktype: 'seqpacket', connected: true })
    t.like(info('unix-dgram'), { domain: 'unix', socktype: 'dgram', connected: true, listening: false })
    t.like(info('unix-stream-listening'), {
      socktype: 'stream',
      listening: true,
      connected: false,
      local: join(z.dir, 'unix-stream-listening'),
      remote: null,
    })
    t.like(info('unix-seqpacket-listening'), { socktype: 'seqpacket', listening: true })
    const tcp4 = info('tcp4-listening')
    t.like(tcp4, {
      domain: 'inet',
      socktype: 'stream',
      listening: true,
      connected: false,
      nonblock: true,
      remote: null,
    })
    t.like(tcp4.local as object, { address: '127.0.0.1', family: 'IPv4' })
    t.like(info('tcp6-listening').local as object, { address: '::1', family: 'IPv6' })
    const conn = info('tcp6-connected')
    t.like(conn, { domain: 'inet6', socktype: 'stream', listening: false, connected: true })
    t.like(conn.remote as object, { address: '::1', family: 'IPv6' })
    t.true((conn.remote as nu.InetAddress).port > 0)
    t.like(info('udp4'), { domain: 'inet', socktype: 'dgram', connected: false })
    t.like(info('udp6').local as object, { address: '::1', family: 'IPv6' })
    t.like(info('unix-stream-idle'), {
      socktype: 'stream',
      listening: false,
      connected: false,
      local: '',
      remote: null,
    })
    t.like(info('tcp4-idle'), { domain: 'inet', listening: false, connected: false })
    t.like(info('netlink'), { type: 'socket', domain: 16, socktype: 'raw', local: null })
    t.like(info('eventfd'), { type: 'unknown', cloexec: true })
    t.is(info('eventfd').domain, undefined, 'no socket fields on other fds')
    t.like(info('epoll'), { type: 'unknown' })
    t.like(info('pipe'), { type: 'fifo' })
    t.like(info('file'), { type: 'file' })
    t.like(info('directory'), { type: 'directory' })
    t.like(info('devnull'), { type: 'character', nonblock: true })
    for (const [n, fd] of z.fds) t.is(state(fd), before.get(n), `${n} unchanged by fdinfo`)
    // Node's own sockets, for the shapes net reports.
    const server = net.createServer().listen(0, '127.0.0.1')
    await once(server, 'listening')
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd
    t.deepEqual(nu.fdinfo(fd).local, server.address())
    server.close()
  } finally {
    nu.closeFds([...z.fds.values()])
    nu.close(z.ctl)
    await z.done
  }
})

test.serial('adopt refuses every fd that is no socket Node can use, leaving it open and unchanged', async (t) => {
  const z = await zoo()
  try {
    for (const n of [
      'unix-stream-idle',
      'tcp4-idle',
      'netlink',
      'eventfd',
      'epoll',
      'pipe',
      'file',
      'directory',
      'devnull',
    ]) {
      const fd = z.fds.get(n)!
      const before = state(fd)
      const e = t.throws(() => nu.adopt(fd), { instanceOf: TypeError, code: 'ERR_INVALID_FD_TYPE' }, n)
      t.regex(e!.message, new RegExp(`fd ${fd} is`), n)
      t.is(state(fd), before, `${n}: still open, same flags`)
    }
    const seq = z.fds.get('unix-seqpacket-listening')!
    const before = state(seq)
    t.throws(() => nu.adopt(seq, { net: true }), { code: 'ERR_INVALID_FD_TYPE', message: /net cannot/ })
    t.is(state(seq), before)
  } finally {
    nu.closeFds([...z.fds.values()])
    nu.close(z.ctl)
    await z.done
  }
})

test.serial('adopt turns each socket of the zoo into its Node object, used end to end', async (t) => {
  const before = fdCount()
  const z = await zoo()
  const f = (n: string) => z.fds.get(n)!
  const closed: Promise<unknown>[] = []
  try {
    // Unix stream and seqpacket, connected: UnixSocket, with the fd Python sent and an echo.
    for (const n of ['unix-stream', 'unix-seqpacket']) {
      const s = nu.adopt(f(n)) as nu.UnixSocket
      t.true(s instanceof nu.UnixSocket, n)
      const [fds] = (await once(s, 'fds')) as [number[]]
      t.is(readlinkSync(`/proc/self/fd/${fds[0]}`), '/dev/null', `${n}: the fd Python sent`)
      t.true((fdFlags(fds[0]) & O_CLOEXEC) !== 0)
      s.closeFds(fds)
      const [first] = (await once(s, 'data')) as [Buffer]
      t.is(first.toString(), `py:${n}`)
      s.write('hello')
      const [echo] = (await once(s, 'data')) as [Buffer]
      t.is(echo.toString(), 'HELLO', n)
      closed.push(once(s, 'close'))
      s.destroy()
    }
    // Unix datagram: the createSocket class, fds included, and a reply on the connected socket.
    const d = nu.adopt(f('unix-dgram'), { fds: true }) as nu.UnixDgramSocket
    t.true(d instanceof nu.UnixDgramSocket)
    t.true(d.connected)
    const [msg, rinfo] = (await once(d, 'message')) as [Buffer, nu.RemoteInfo]
    t.is(msg.toString(), 'py:unix-dgram')
    t.is(rinfo.fds!.length, 1)
    nu.closeFds(rinfo.fds!)
    d.send(Buffer.from('dgram'))
    const [reply] = (await once(d, 'message')) as [Buffer]
    t.is(reply.toString(), 'DGRAM')
    d.close() // synchronous, and no 'close' event: as unix-dgram
    // Unix listeners: UnixServer, stream and seqpacket; a stream one as a net.Server on request.
    for (const n of ['unix-stream-listening', 'unix-seqpacket-listening']) {
      const server = nu.adopt(f(n)) as nu.UnixServer
      t.true(server instanceof nu.UnixServer, n)
      t.true(server.listening)
      const conn = once(server, 'connection')
      const path = join(z.dir, n)
      const c = n.includes('seqpacket') ? await nu.connect(path, nu.seqpacket) : await nu.connect(path)
      const [s] = (await conn) as [nu.UnixSocket]
      const [a, b] = nu.socketpair()
      await nu.sendfds(c, Buffer.from('with fd'), [a])
      const [got] = (await once(s, 'fds')) as [number[]]
      t.is(nu.fdinfo(got[0]).socktype, 'stream', `${n}: the fd arrived through the adopted server's connection`)
      nu.closeFds([...got, a, b, c])
      s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
    // TCP listeners: net.Server; a TCP connection: net.Socket.
    for (const n of ['tcp4-listening', 'tcp6-listening']) {
      const server = nu.adopt(f(n)) as net.Server
      t.true(server instanceof net.Server, n)
      server.on('connection', (s) => s.end('served'))
      const info = nu.fdinfo(f(n)).local as nu.InetAddress
      const c = net.connect(info.port, info.address)
      const chunks: Buffer[] = []
      c.on('data', (b) => chunks.push(b))
      await once(c, 'end')
      t.is(Buffer.concat(chunks).toString(), 'served', n)
      c.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
    const tcp = nu.adopt(f('tcp6-connected')) as net.Socket
    t.true(tcp instanceof net.Socket)
    tcp.write('tcp')
    const [echo] = (await once(tcp, 'data')) as [Buffer]
    t.is(echo.toString(), 'TCP')
    closed.push(once(tcp, 'close'))
    tcp.destroy()
    // UDP: dgram.Socket.
    for (const n of ['udp4', 'udp6']) {
      const u = nu.adopt(f(n)) as dgram.Socket
      t.true(u instanceof dgram.Socket, n)
      const info = nu.fdinfo(f(n)).local as nu.InetAddress
      const sender = dgram.createSocket(n === 'udp4' ? 'udp4' : 'udp6')
      sender.send('udp', info.port, info.address)
      const [m] = (await once(u, 'message')) as [Buffer]
      t.is(m.toString(), 'udp', n)
      sender.close()
      closed.push(once(u, 'close'))
      u.close()
    }
    await Promise.all(closed)
    // Every adopted fd is closed by its object.
    for (const n of ['unix-stream', 'unix-seqpacket', 'unix-dgram', 'tcp6-connected', 'udp4', 'udp6']) {
      t.throws(() => nu.fdinfo(f(n)), { code: 'EBADF' }, `${n} closed with its object`)
      z.fds.delete(n)
    }
    for (const n of ['unix-stream-listening', 'unix-seqpacket-listening', 'tcp4-listening', 'tcp6-listening']) {
      z.fds.delete(n)
    }
  } finally {
    nu.closeFds([...z.fds.values()].filter((fd) => fd >= 0))
    nu.close(z.ctl)
    await z.done
  }
  t.is(fdCount(), before, 'every fd received, adopted and accepted is closed again')
})

test.serial('adopt of a Unix listener with { net: true } is a net.Server; fd counts balance', async (t) => {
  const before = fdCount()
  const dir = mkdtempSync(join(tmpdir(), 'net-unix-adopt-'))
  const path = join(dir, 's')
  const server = nu.adopt(nu.listen(path), { net: true }) as net.Server
  t.true(server instanceof net.Server)
  server.on('connection', (s) => s.end('net'))
  const c = net.connect(path)
  const chunks: Buffer[] = []
  c.on('data', (b) => chunks.push(b))
  await once(c, 'end')
  t.is(Buffer.concat(chunks).toString(), 'net')
  c.destroy()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  const [a, b] = nu.socketpair()
  const s = nu.adopt(a, { net: true }) as net.Socket
  t.true(s instanceof net.Socket && !(s instanceof nu.UnixSocket))
  s.end('x')
  t.is((await nu.recvfds(b, 1, 0)).data.toString(), 'x')
  const closed = once(s, 'close')
  nu.close(b)
  await closed
  t.is(fdCount(), before)
})

test('fdinfo and adopt: bad input', (t) => {
  for (const fn of [nu.fdinfo, nu.adopt] as ((fd: unknown, o?: unknown) => unknown)[]) {
    t.throws(() => fn('3'), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
    t.throws(() => fn(-1), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
    t.throws(() => fn(1.5), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
    const e = t.throws(() => fn(2 ** 31 - 1), { code: 'EBADF' }) as unknown as nu.ErrnoError
    t.like(e, { errno: -9, syscall: 'fstat' })
  }
  const [a, b] = nu.socketpair()
  t.throws(() => nu.adopt(a, 'net' as never), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => nu.adopt(a, { net: 1 } as never), { code: 'ERR_INVALID_ARG_TYPE', message: /options\.net/ })
  t.throws(() => nu.adopt(a, { fds: 'yes' } as never), { code: 'ERR_INVALID_ARG_TYPE' })
  t.is(nu.fdinfo(a).connected, true, 'refused options left the fd open')
  nu.closeFds([a, b])
  const file = openSync(__filename, 'r')
  t.like(nu.fdinfo(file), { type: 'file', cloexec: true })
  closeSync(file)
})
