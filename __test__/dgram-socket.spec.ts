// createSocket: the evented datagram socket in the shape node:dgram and unix-dgram share,
// with unix-dgram's synchronous outcomes, congestion and 'writable', fds and credentials.
import test from 'ava'
import { closeSync, openSync } from 'node:fs'
import { once } from 'node:events'
import * as nu from '../index.js'
import { abstractName, fdCount, runNode, tmpPath } from './helpers'

test.serial('messages arrive with rinfo.path, rinfo.fds (fds: true) and rinfo.cred (credentials: true)', async (t) => {
  const before = fdCount()
  const path = tmpPath('ev.sock')
  const rx = nu.createSocket({ type: 'unix_dgram', fds: true, credentials: true })
  const listening = once(rx, 'listening')
  rx.bind(path)
  await listening
  const tx = nu.createSocket('unix_dgram')
  const txName = abstractName('evtx')
  tx.bind(txName)
  const file = openSync(__filename, 'r')
  const got = once(rx, 'message')
  tx.sendWithFds(Buffer.from('with fds'), [file, file], path, (err) => t.falsy(err))
  const [msg, rinfo] = (await got) as [Buffer, nu.RemoteInfo]
  t.is(msg.toString(), 'with fds')
  t.is(rinfo.size, 8)
  t.is(rinfo.path, txName)
  t.is(rinfo.fds?.length, 2)
  t.deepEqual(rinfo.cred, { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() })
  rinfo.fds!.forEach((fd) => nu.close(fd))
  // send(buf, offset, length, path, cb) and sendto, as unix-dgram has them.
  const second = once(rx, 'message')
  tx.send(Buffer.from('xxpartyy'), 2, 5, path, (err?: Error | null) => t.falsy(err))
  t.is(((await second) as [Buffer])[0].toString(), 'party')
  const third = once(rx, 'message')
  tx.sendto(Buffer.from('sendto'), 0, 6, path)
  t.is(((await third) as [Buffer])[0].toString(), 'sendto')
  t.deepEqual(rx.address(), { path })
  rx.close()
  await new Promise<void>((resolve) => tx.close(resolve))
  closeSync(file)
  t.is(fdCount(), before)
})

test.serial('without fds: true the fds sent are closed by the kernel, never leaked', async (t) => {
  const before = fdCount()
  const name = abstractName('nofds')
  const rx = nu.createSocket('unix_dgram')
  rx.bind(name)
  const file = openSync(__filename, 'r')
  const tx = nu.createSocket('unix_dgram')
  const got = once(rx, 'message')
  tx.sendWithFds(Buffer.from('x'), [file], name)
  const [, rinfo] = (await got) as [Buffer, nu.RemoteInfo]
  t.is(rinfo.fds, undefined)
  t.is(rinfo.path, null, 'an unbound sender')
  rx.close()
  tx.close()
  closeSync(file)
  t.is(fdCount(), before)
})

test.serial('connect, bind: outcomes are synchronous; with no error listener connect throws', (t) => {
  const before = fdCount()
  const s = nu.createSocket('unix_dgram')
  const missing = tmpPath('nobody.sock')
  t.throws(() => s.connect(missing), { code: 'ENOENT', message: `connect ENOENT ${missing}` })
  const errors: Error[] = []
  s.on('error', (e) => errors.push(e))
  s.connect(abstractName('nobody'))
  t.is((errors[0] as NodeJS.ErrnoException).code, 'ECONNREFUSED')
  const name = abstractName('twice')
  let listened = 0
  s.on('listening', () => listened++)
  s.bind(name)
  t.is(listened, 1, "'listening' before bind returns")
  s.bind(abstractName('again'))
  t.is((errors[1] as NodeJS.ErrnoException).code, 'EINVAL', 'binding a bound socket')
  const other = nu.createSocket('unix_dgram')
  other.on('error', (e) => errors.push(e))
  other.bind(name)
  t.is((errors[2] as NodeJS.ErrnoException).code, 'EADDRINUSE')
  let connected = 0
  other.on('connect', () => connected++)
  other.connect(name)
  t.true(other.connected)
  t.is(connected, 1)
  s.close()
  s.close() // again: nothing
  other.close()
  // As unix-dgram: a send on a closed socket is an EBADF 'error' (no callback), never a throw.
  other.send(Buffer.from('x'))
  t.like(errors[3], { code: 'EBADF', errno: -9, syscall: 'send' })
  t.throws(() => nu.createSocket('unix_stream' as never), { code: 'ERR_SOCKET_BAD_TYPE' })
  t.is(fdCount(), before)
})

test.serial(
  "a full receiver: send's callback gets 'congestion', then 'writable' once it drains; ENOTCONN after it is gone",
  async (t) => {
    const before = fdCount()
    const name = abstractName('cong')
    const rx = nu.dgramSocket({ bind: name })
    const tx = nu.createSocket('unix_dgram')
    tx.connect(name)
    let sent = 0
    let congestion: Error | undefined
    while (!congestion) {
      tx.send(Buffer.alloc(64), (err?: Error | null) => {
        if (err) congestion = err
        else sent++
      })
    }
    t.is(congestion.message, 'congestion')
    t.true(sent > 0)
    // Without a callback: the 'congestion' event, with the buffer.
    const buf = Buffer.from('dropped')
    const [dropped] = await new Promise<unknown[]>((resolve) => {
      tx.once('congestion', (...args) => resolve(args))
      tx.send(buf)
    })
    t.is(dropped, buf)
    const writable = once(tx, 'writable')
    for (let i = 0; i < sent; i++) nu.recvfromSync(rx, 64)
    await writable
    await new Promise<void>((resolve) =>
      tx.send(Buffer.from('again'), (err?: Error | null) => (t.falsy(err), resolve())),
    )
    nu.close(rx)
    const codes: string[] = []
    for (let i = 0; i < 2; i++)
      tx.send(Buffer.from('x'), (err?: Error | null) => codes.push((err as NodeJS.ErrnoException).code!))
    t.deepEqual(codes, ['ECONNREFUSED', 'ENOTCONN'])
    tx.close()
    t.is(fdCount(), before)
  },
)

test('a socket holds the process open until close(); unref() lets it exit', async (t) => {
  const held = await runNode(`
    const nu = require(process.env.NET_UNIX)
    const s = nu.createSocket('unix_dgram', () => {})
    s.bind()
    setImmediate(() => { console.log('closing'); s.close(() => console.log('closed')) })`)
  t.deepEqual(held.stdout.trim().split('\n'), ['closing', 'closed'], held.stderr)
  const unrefd = await runNode(`
    const nu = require(process.env.NET_UNIX)
    const s = nu.createSocket('unix_dgram')
    s.bind()
    s.unref()
    process.on('exit', () => console.log('exited with the socket open:', s.fd > 2))`)
  t.is(unrefd.stdout.trim(), 'exited with the socket open: true', unrefd.stderr)
})

test('udp4 and udp6 are node:dgram sockets, as in unix-dgram', (t) => {
  const s = nu.createSocket('udp4')
  t.is(s.constructor.name, 'Socket')
  t.is(typeof (s as unknown as { setBroadcast: unknown }).setBroadcast, 'function')
  s.close()
})

test.serial(
  'ten queued datagrams (one recvmmsg batch): order and fds kept; closing mid-way closes the fds of the rest',
  async (t) => {
    const before = fdCount()
    const name = abstractName('batch')
    const rx = nu.createSocket({ type: 'unix_dgram', fds: true })
    rx.bind(name)
    const tx = nu.createSocket('unix_dgram')
    const file = openSync(__filename, 'r')
    // Ten fill the receive queue (net.unix.max_dgram_qlen) before rx's next readiness: one batch.
    const send = () => {
      for (let i = 0; i < 10; i++) {
        tx.sendWithFds(Buffer.from(`m${i}`), Array(1 + (i % 3)).fill(file), name, (err) => t.falsy(err))
      }
    }
    send()
    const got: [string, number][] = []
    await new Promise<void>((resolve) => {
      rx.on('message', (msg: Buffer, rinfo: nu.RemoteInfo) => {
        got.push([msg.toString(), rinfo.fds!.length])
        rinfo.fds!.forEach((fd) => nu.close(fd))
        if (got.length === 10) resolve()
      })
    })
    t.deepEqual(
      got,
      Array.from({ length: 10 }, (_, i): [string, number] => [`m${i}`, 1 + (i % 3)]),
    )

    // Again, and the listener closes the socket at the third: the seven after it are not
    // delivered, and the fds they carried are closed, not leaked.
    rx.removeAllListeners('message')
    const seen: string[] = []
    let closedNow = () => {}
    const closed = new Promise<void>((resolve) => (closedNow = resolve))
    rx.on('message', (msg: Buffer, rinfo: nu.RemoteInfo) => {
      seen.push(msg.toString())
      rinfo.fds!.forEach((fd) => nu.close(fd))
      if (seen.length === 3) rx.close(closedNow)
    })
    send()
    await closed
    t.deepEqual(seen, ['m0', 'm1', 'm2'])
    tx.close()
    closeSync(file)
    t.is(fdCount(), before)
  },
)

test.serial(
  'unix-dgram parity: a closed socket reports EBADF to the callback or as an error event, never throws',
  (t) => {
    const before = fdCount()
    const s = nu.createSocket('unix_dgram')
    s.close()
    const errors: NodeJS.ErrnoException[] = []
    s.on('error', (e: NodeJS.ErrnoException) => errors.push(e))
    const sent: unknown[][] = []
    t.notThrows(() => s.send(Buffer.from('x'), (...args: unknown[]) => sent.push(args)))
    t.notThrows(() => s.send(Buffer.from('xy'), 0, 1, abstractName('gone'), (...args: unknown[]) => sent.push(args)))
    t.notThrows(() => s.sendto(Buffer.from('x'), 0, 1, abstractName('gone')))
    t.notThrows(() => s.sendWithFds(Buffer.from('x'), [0]))
    t.notThrows(() => s.bind(abstractName('late')))
    t.notThrows(() => s.connect(abstractName('late')))
    t.is(sent.length, 2, 'each callback called synchronously, as unix-dgram does')
    for (const [err] of sent) t.like(err, { code: 'EBADF', errno: -9, syscall: 'send' })
    t.deepEqual(
      errors.map((e) => [e.code, e.errno, e.syscall]),
      [
        ['EBADF', -9, 'send'],
        ['EBADF', -9, 'send'],
        ['EBADF', -9, 'bind'],
        ['EBADF', -9, 'connect'],
      ],
    )
    // Bad arguments are still the caller's error, closed socket or not.
    t.throws(() => s.send('x' as never, 42 as never, 1, 'p', () => {}), { code: 'ERR_INVALID_ARG_TYPE' })
    t.is(fdCount(), before)
  },
)

test.serial(
  "unix-dgram parity: cb() with no argument on success, the congestion error's fields, a bad type's message",
  (t) => {
    const name = abstractName('parity')
    const rx = nu.dgramSocket({ bind: name })
    const tx = nu.createSocket('unix_dgram')
    tx.connect(name)
    const calls: unknown[][] = []
    while (calls.length === 0 || calls.at(-1)!.length === 0)
      tx.send(Buffer.from('x'), (...args: unknown[]) => calls.push(args))
    t.true(calls.length > 1)
    t.true(
      calls.slice(0, -1).every((args) => args.length === 0),
      'success: cb() with no argument',
    )
    const congestion = calls.at(-1)![0] as Error & Record<string, unknown>
    t.is(congestion.message, 'congestion')
    t.is(congestion.code, 1, "unix-dgram's code: 1")
    t.is(congestion.errno, undefined)
    tx.close()
    nu.close(rx)
    t.throws(() => nu.createSocket('bogus' as never), {
      message: 'Unsupported socket type: bogus',
      code: 'ERR_SOCKET_BAD_TYPE',
    })
  },
)

test.serial("unix-dgram parity: a full queue at an address (no connect) is EAGAIN, not 'congestion'", (t) => {
  const name = abstractName('fullat')
  const rx = nu.dgramSocket({ bind: name })
  const tx = nu.createSocket('unix_dgram')
  const outcomes: unknown[][] = []
  while (outcomes.length === 0 || outcomes.at(-1)!.length === 0) {
    tx.send(Buffer.from('x'), 0, 1, name, (...args: unknown[]) => outcomes.push(args))
  }
  t.like(outcomes.at(-1)![0], { code: 'EAGAIN', errno: -11, syscall: 'send', address: name })
  let congestion = 0
  tx.on('congestion', () => congestion++)
  const errors: NodeJS.ErrnoException[] = []
  tx.on('error', (e: NodeJS.ErrnoException) => errors.push(e))
  tx.sendto(Buffer.from('x'), 0, 1, name)
  t.is(congestion, 0)
  t.is(errors[0]?.code, 'EAGAIN')
  tx.close()
  nu.close(rx)
})

test("unix-dgram parity: no 'close' event; close(cb) calls cb once, on the next tick (hot-shots <= 11 emits 'close' itself)", async (t) => {
  const s = nu.createSocket('unix_dgram')
  const calls: string[] = []
  // hot-shots 11's close(): a 'close' listener that calls the user's callback, then
  // socket.close(), then its transport's own socket.emit('close').
  s.on('close', () => calls.push('listener'))
  s.close(() => calls.push('callback'))
  s.emit('close')
  t.deepEqual(calls, ['listener'], 'only the emit of the caller')
  await new Promise((resolve) => setImmediate(resolve))
  t.deepEqual(calls, ['listener', 'callback'])
  s.close(() => calls.push('again'))
  await new Promise((resolve) => setImmediate(resolve))
  t.deepEqual(calls, ['listener', 'callback'], 'closing again does nothing')
})
