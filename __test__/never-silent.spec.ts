// What a stream never does silently (API.md §7), from issue 20's reproductions: seqpacket
// messages whole (or an 'error'), writes made before a failed connect called back, listen({ fd })
// refusing what is not a listening socket, and factories that throw leaving nothing open. Each
// is compared with `net` where `net` has the same case.
import test from 'ava'
import net from 'node:net'
import { once } from 'node:events'
import { closeSync, existsSync, fstatSync, openSync, writeFileSync } from 'node:fs'
import type { Duplex } from 'node:stream'
import * as nu from '../index.js'
import { ROOT, abstractName, fdCount, fixture, run, runNode, start, tmpPath, within } from './helpers'

/** The lengths of the 'data' chunks `s` delivers until `last` arrives. */
function chunksUntil(s: nu.UnixSocket, last: string): Promise<number[]> {
  const lengths: number[] = []
  return new Promise((resolve, reject) => {
    s.on('error', reject)
    s.on('data', (d: Buffer) => {
      lengths.push(d.length)
      if (d.toString() === last) resolve(lengths)
    })
  })
}

test.serial('seqpacket: a 100 KiB message is one whole chunk, not 64 KiB and silence', async (t) => {
  const before = fdCount()
  const [a, b] = nu.socketpair(nu.seqpacket)
  const tx = new nu.UnixSocket({ fd: a })
  const rx = new nu.UnixSocket({ fd: b })
  const got = chunksUntil(rx, 'tail')
  const written = new Promise<void>((resolve, reject) =>
    tx.write(Buffer.alloc(100 * 1024, 7), (e) => (e ? reject(e) : resolve())),
  )
  tx.write('tail')
  t.deepEqual(await got, [100 * 1024, 4])
  await written
  tx.destroy()
  rx.destroy()
  await Promise.all([once(tx, 'close'), once(rx, 'close')])
  t.is(fdCount(), before)
})

test.serial("seqpacket: reads of other sockets (the shared pool) never shrink a message's room", async (t) => {
  const before = fdCount()
  const [c, d] = nu.socketpair()
  const [a, b] = nu.socketpair(nu.seqpacket)
  const streamTx = new nu.UnixSocket({ fd: c })
  const streamRx = new nu.UnixSocket({ fd: d })
  const tx = new nu.UnixSocket({ fd: a })
  const rx = new nu.UnixSocket({ fd: b })
  // 20,000 bytes read on a stream socket first: the pool's rest is 45,536 bytes.
  const other = new Promise<number>((resolve) => {
    let n = 0
    streamRx.on('data', (x: Buffer) => (n += x.length) === 20000 && resolve(n))
  })
  streamTx.write(Buffer.alloc(20000))
  t.is(await other, 20000)
  const got = chunksUntil(rx, 'end')
  tx.write(Buffer.alloc(50000))
  tx.write(Buffer.alloc(45537))
  tx.write('end')
  t.deepEqual(await got, [50000, 45537, 3])
  for (const s of [streamTx, streamRx, tx, rx]) s.destroy()
  await Promise.all([streamTx, streamRx, tx, rx].map((s) => once(s, 'close')))
  t.is(fdCount(), before)
})

// A Python peer finds the largest message it can send by sending: Linux bounds a unix seqpacket
// message by the sender's SO_SNDBUF - 32 (EMSGSIZE) and by what it can allocate for one
// (ENOBUFS). Every send that succeeds must arrive whole, as one chunk.
const LARGEST = `
import errno, json, socket, sys
s = socket.socket(fileno=3)
s.setblocking(True)
force = int(sys.argv[1])
if force:
    s.setsockopt(socket.SOL_SOCKET, 32, force)  # SO_SNDBUFFORCE (root)
sndbuf = s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
try:
    s.send(b'x' * (sndbuf - 31))
    over = 'sent'
except OSError as e:
    over = e.errno
lo, hi, sent = 0, sndbuf - 32, []
while lo < hi:
    mid = (lo + hi + 1) // 2
    try:
        s.send(b'L' * mid)
        sent.append(mid)
        lo = mid
    except OSError as e:
        if e.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
            raise
        hi = mid - 1
s.send(b'end')
print(json.dumps({'sndbuf': sndbuf, 'largest': lo, 'sent': sent, 'over': over}), flush=True)
`

/** Destroys `streams` and waits until each has closed. */
async function destroyAll(...streams: Duplex[]): Promise<void> {
  await Promise.all(
    streams.map((s) => {
      const closed = s.closed ? undefined : new Promise((resolve) => s.once('close', resolve))
      s.destroy()
      return closed
    }),
  )
}

for (const force of [0, 4 * 1024 * 1024]) {
  test.serial(
    `seqpacket: the largest message a peer can send arrives whole (${force ? 'SO_SNDBUFFORCE 4 MiB' : 'default SO_SNDBUF'})`,
    async (t) => {
      const before = fdCount()
      const [a, b] = nu.socketpair(nu.seqpacket)
      const py = start('python3', ['-c', LARGEST, String(force)], { stdio: ['ignore', 'pipe', 'pipe', b] })
      nu.close(b)
      const rx = new nu.UnixSocket({ fd: a })
      const got = chunksUntil(rx, 'end')
      const r = await py.done
      t.is(r.code, 0, r.stderr)
      const { sndbuf, largest, sent, over } = JSON.parse(r.stdout) as Record<string, number> & { sent: number[] }
      t.is(over, 90, 'SO_SNDBUF - 31 bytes is EMSGSIZE')
      t.deepEqual(await got, [...sent, 3], `SO_SNDBUF ${sndbuf}`)
      t.log(`SO_SNDBUF ${sndbuf}: the largest message sent is ${largest} bytes; each of ${sent.length} arrived whole`)
      await destroyAll(rx)
      t.is(fdCount(), before)
    },
  )
}

/** The write callbacks' codes and the `'error'` of a stream whose connect fails, in order. */
async function failedConnect(s: Duplex, third: (cb: (e?: Error | null) => void) => void): Promise<string[]> {
  const seen: string[] = []
  const code = (e?: Error | null) => (e as NodeJS.ErrnoException | undefined)?.code ?? 'ok'
  s.on('error', (e) => seen.push(`'error' ${code(e)}`))
  s.write('first', (e) => seen.push(`write 1: ${code(e)}`))
  s.write('second', (e) => seen.push(`write 2: ${code(e)}`))
  third((e) => seen.push(`write 3: ${code(e)}`))
  await within(new Promise((resolve) => s.once('close', resolve)), 5000, 'close after a failed connect')
  await new Promise((resolve) => setImmediate(resolve))
  return seen
}

test.serial("a failed connect calls back every write made before 'connect', as net does; dups closed", async (t) => {
  const file = tmpPath('file')
  writeFileSync(file, '')
  const stale = tmpPath('stale.sock')
  nu.close(nu.listen(stale)) // bound, then closed: connecting is ECONNREFUSED
  const targets: Record<string, string> = {
    'a missing path': tmpPath('nope.sock'),
    'a file': file,
    'a stale socket': stale,
    'an unbound abstract name': abstractName('nobody'),
  }
  for (const [what, path] of Object.entries(targets)) {
    const before = fdCount()
    const fd = openSync(__filename, 'r')
    const socket = nu.createConnection(path)
    const ours = await failedConnect(socket, (cb) => socket.writeWithFds('third', [fd, fd], cb))
    closeSync(fd)
    t.is(fdCount(), before, `${what}: the dups writeWithFds made are closed`)
    const n = net.createConnection(path)
    const expected = await failedConnect(n, (cb) => n.write('third', cb))
    t.deepEqual(ours, expected, what)
    t.true(ours.includes('write 1: ERR_SOCKET_CLOSED_BEFORE_CONNECTION'), `${what}: ${ours.join(', ')}`)
    t.is(ours.length, 4, `${what}: one 'error', three callbacks`)
  }
})

/** The events a server emits after `listen({ fd })`, up to its first 'error'. */
async function listenEvents(server: net.Server | nu.UnixServer, fd: number): Promise<string[]> {
  const seen: string[] = []
  server.on('listening', () => seen.push('listening'))
  const error = once(server, 'error') as Promise<[NodeJS.ErrnoException]>
  server.listen({ fd })
  const [e] = await within(error, 5000, `listen({ fd: ${fd} })`)
  seen.push(`error ${e.syscall}`)
  return seen
}

test.serial(
  "listen({ fd }) with what is not a listening stream or seqpacket socket: one 'error' (listen), never 'listening'",
  async (t) => {
    const closedNumber = (): number => {
      const fd = openSync('/dev/null', 'r')
      closeSync(fd)
      return fd
    }
    const cases: Record<string, [() => number, string]> = {
      'a connected socketpair end': [() => nu.socketpair()[0], 'EINVAL'],
      '/dev/null': [() => openSync('/dev/null', 'r'), 'ENOTSOCK'],
      'a closed number': [closedNumber, 'EBADF'],
      'a datagram socket': [() => nu.dgramSocket(), 'EINVAL'],
      'a seqpacket socket not listening': [() => nu.socketpair(nu.seqpacket)[0], 'EINVAL'],
    }
    const made: number[] = []
    for (const [what, [make, code]] of Object.entries(cases)) {
      const fd = make()
      made.push(fd)
      const before = fdCount()
      const ours = new nu.UnixServer()
      const codes: string[] = []
      ours.on('error', (e: NodeJS.ErrnoException) => codes.push(`${e.code} ${e.syscall} ${e.errno}`))
      const seen = await listenEvents(ours, fd)
      t.false(ours.listening, `${what}: not listening (no accept loop left running)`)
      t.deepEqual(codes, [`${code} listen ${-{ EINVAL: 22, ENOTSOCK: 88, EBADF: 9 }[code]!}`], what)
      if (what !== 'a closed number') t.notThrows(() => fstatSync(fd), `${what}: the fd stays the caller's`)
      t.is(fdCount(), before, what)
      // net gets an fd of its own: it closes what it fails to listen on.
      const theirs = make()
      made.push(theirs)
      t.deepEqual(seen, await listenEvents(new net.Server(), theirs), `${what}: the events net.Server emits`)
    }
    for (const fd of made) {
      try {
        closeSync(fd)
      } catch {
        // closed already (by net, or never open)
      }
    }
  },
)

test.serial('constructors and factories that throw leave no fd open', (t) => {
  const [a, b] = nu.socketpair()
  const path = tmpPath('never.sock')
  const bad = 42 as never
  const cases: [string, () => unknown][] = [
    ["createSocket('unix_dgram', 42)", () => nu.createSocket('unix_dgram', bad)],
    ["createSocket({ type: 'unix_dgram' }, 42)", () => nu.createSocket({ type: 'unix_dgram' }, bad)],
    [
      "createSocket({ type: 'unix_dgram', fds: 'yes' })",
      () => nu.createSocket({ type: 'unix_dgram', fds: 'yes' as never }),
    ],
    ["createSocket('bogus')", () => nu.createSocket('bogus' as never)],
    ['new UnixSocket({ fd, allowHalfOpen: 1 })', () => new nu.UnixSocket({ fd: a, allowHalfOpen: 1 as never })],
    [
      'new UnixSocket({ fd, readableHighWaterMark: -1 })',
      () => new nu.UnixSocket({ fd: a, readableHighWaterMark: -1 }),
    ],
    ['new UnixSocket({ fd: -1 })', () => new nu.UnixSocket({ fd: -1 })],
    ['new UnixServer({}, 42)', () => new nu.UnixServer({}, bad)],
    ['createServer({}, 42)', () => nu.createServer({}, bad)],
    ["createServer('x')", () => nu.createServer('x' as never)],
    ['createConnection(path, {}, 42)', () => nu.createConnection(path, {}, bad)],
    ['createConnection(path, { allowHalfOpen: 1 })', () => nu.createConnection(path, { allowHalfOpen: 1 as never })],
    ["dgramSocket({ credentials: 'x' })", () => nu.dgramSocket({ credentials: 'x' as never })],
    [
      'dgramSocket({ bind, connect: a missing path })',
      () => nu.dgramSocket({ bind: path, connect: tmpPath('gone.sock') }),
    ],
  ]
  for (const [what, call] of cases) {
    const before = fdCount()
    t.throws(call, undefined, what)
    t.is(fdCount(), before, what)
  }
  t.false(existsSync(path), 'dgramSocket removed the path it bound')
  t.notThrows(() => fstatSync(a), 'a UnixSocket that threw did not take its fd')
  nu.close(a)
  nu.close(b)
})

test('a process whose createSocket threw exits by itself', async (t) => {
  const r = await within(
    runNode(`
      const nu = require(process.env.NET_UNIX)
      try { nu.createSocket('unix_dgram', 42) } catch (e) { console.log(e.code) }`),
    10000,
    'the child to exit',
  )
  t.is(r.stdout.trim(), 'ERR_INVALID_ARG_TYPE', r.stderr)
  t.is(r.code, 0)
})

test('control data cut short (EMFILE): bytes before it delivered, the fds that came closed, ERR_SOCKET_FDS_TRUNCATED', async (t) => {
  const r = await run('prlimit', ['--nofile=64', process.execPath, fixture('stream-ctrunc.cjs')], {
    env: { ...process.env, NET_UNIX: ROOT },
  })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), {
    data: ['before'],
    fds: [],
    error: { code: 'ERR_SOCKET_FDS_TRUNCATED', syscall: 'recvmsg' },
    leaked: 0,
  })
})
