'use strict'
// The Node side of the bench: `node peer.js CASE COUNT [ARG]` runs one timed case (it starts its
// own peer process) and prints {"ops":N,"ns":N[,"fds":N][,"failures":{code:N}]} like peer.c
// and peer.py. Roles whose name ends in "-child" are that peer; they talk over fd 3 or a socket
// address, and end when the parent goes away (EOF, IPC disconnect or a new ppid).
const { fork } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const nu = require(path.join(__dirname, '..'))
// The tests' harness: the same message, child-process and address helpers.
const { abstractName, msgOf, start, tmpPath } = require('../__test__/harness.cjs')

const [role, countArg, arg] = process.argv.slice(2)
const count = Number(countArg)
const CHANNEL = 3
const ONE = Buffer.from('x')
const CHUNK = Buffer.alloc(65536)

function report(ops, t0, extra = {}) {
  console.log(JSON.stringify({ ops, ns: Number(process.hrtime.bigint() - t0), ...extra }))
}

/** Starts this script as `role` with the other end of a fresh socketpair as its fd 3. */
function withChild(childRole, args, pair = nu.socketpair()) {
  const [mine, theirs] = pair
  const { child, done } = start(process.execPath, [...process.execArgv, __filename, childRole, String(count), ...args], {
    stdio: ['ignore', 'inherit', 'inherit', theirs],
  })
  nu.close(theirs)
  return { fd: mine, child, exited: done }
}

async function awaitByte(fd) {
  const { data } = await nu.recvfds(fd, 1, 0)
  if (data.length !== 1) throw new Error('peer went away')
}

/** The receiver's final ack: how many fds it received and closed, as 8 bytes. */
/** Times `send(fd, fds)` of COUNT messages of ARG /dev/null fds to a child `childRole`, to its ack. */
async function timedFdSend(childRole, send) {
  const { fds, done } = devnullFds(Number(arg))
  const { fd, exited } = withChild(childRole, [arg])
  await awaitByte(fd) // the child is up
  const t0 = process.hrtime.bigint()
  await send(fd, fds)
  const received = await awaitCount(fd)
  report(count, t0, { fds: received })
  nu.close(fd)
  done()
  await exited
}

/** Times COUNT MiB of 64 KiB writes over a stream socket `connect(address)` makes to a sink child. */
async function streamBulk(childRole, connect) {
  const total = count * 2 ** 20
  const { child, address } = await netChild(childRole)
  const sock = connect(address)
  await new Promise((resolve) => sock.once('connect', resolve))
  const acked = new Promise((resolve) => sock.once('data', resolve))
  const t0 = process.hrtime.bigint()
  for (let sent = 0; sent < total; sent += CHUNK.length) {
    if (!sock.write(CHUNK)) await new Promise((resolve) => sock.once('drain', resolve))
  }
  await acked
  report(total, t0)
  sock.destroy()
  child.kill()
}

/** A server (`createServer` of net or net-unix) that acks with one byte once COUNT MiB came. */
function sinkServer(createServer) {
  const total = count * 2 ** 20
  const server = createServer((s) => {
    let got = 0
    s.on('data', (d) => {
      got += d.length
      if (got >= total) s.write('k')
    })
  })
  server.listen(arg, () => process.send('ready'))
}

/** Times COUNT 64-byte round trips over a stream socket `connect(address)` makes to an echo child. */
async function streamPingPong(childRole, connect) {
  const { child, address } = await netChild(childRole)
  const sock = connect(address)
  await new Promise((resolve) => sock.once('connect', resolve))
  const buf = Buffer.alloc(64)
  let pending = 0
  let next
  sock.on('data', (d) => {
    pending -= d.length
    if (pending === 0) next()
  })
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < count; i++) {
    await new Promise((resolve) => {
      next = resolve
      pending = 64
      sock.write(buf)
    })
  }
  report(count, t0)
  sock.destroy()
  child.kill()
}

function countBytes(n) {
  const b = Buffer.alloc(8)
  b.writeBigInt64LE(BigInt(n))
  return b
}
async function awaitCount(fd) {
  const b = Buffer.alloc(8)
  for (let got = 0; got < 8; ) {
    const { data } = await nu.recvfds(fd, 8 - got, 0)
    if (data.length === 0) throw new Error('peer went away')
    got += data.copy(b, got)
  }
  return Number(b.readBigInt64LE())
}
function awaitCountSync(fd) {
  const b = Buffer.alloc(8)
  for (let got = 0; got < 8; ) {
    const n = nu.recvmsgSync(fd, msgOf(b.subarray(got)))
    if (n === 0) throw new Error('peer went away')
    got += n
  }
  return Number(b.readBigInt64LE())
}

/** fd passing with sendmsgSync on a blocking socket, one message built once, to `childRole`. */
function sendSync(childRole) {
  const { fds, done } = devnullFds(Number(arg))
  const { fd, exited } = withChild(childRole, [arg])
  const msg = msgOf(ONE)
  nu.addfiles(msg, ...fds)
  nu.recvmsgSync(fd, msgOf(Buffer.alloc(1)))
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < count; i++) nu.sendmsgSync(fd, msg)
  const received = awaitCountSync(fd)
  report(count, t0, { fds: received })
  nu.close(fd)
  done()
  return exited
}

/** A long-lived child with no channel to watch ends when its parent does. */
function dieWithParent() {
  const parent = process.ppid
  setInterval(() => process.ppid !== parent && process.exit(0), 200).unref()
}

function devnullFds(n) {
  const fd = fs.openSync('/dev/null', 'r')
  return { fds: Array(n).fill(fd), done: () => fs.closeSync(fd) }
}

/** Sends COUNT copies of `msg` with sendfdsMany, 32 per call. */
async function sendBatches(fd, msg) {
  const batch = Array(32).fill(msg)
  for (let i = 0; i < count; i += 32) await nu.sendfdsMany(fd, count - i >= 32 ? batch : batch.slice(0, count - i))
}

/** A SOCK_DGRAM socketpair (the public API binds or connects datagram sockets by address). */
function dgramPair() {
  const binding = require(path.join(__dirname, '..', 'binding.js'))
  return binding.socketpairTyped(2, 0o2000000)
}
const DGRAM = Buffer.alloc(64)

/** Times `send(fd)` of COUNT datagrams over a SOCK_DGRAM socketpair to a child, to its count. */
async function timedDgramSend(childRole, send) {
  const { fd, exited } = withChild(childRole, [], dgramPair())
  await nu.recvfrom(fd, 1) // the child is up
  const t0 = process.hrtime.bigint()
  await send(fd)
  const got = (await nu.recvfrom(fd, 8)).data.readBigInt64LE()
  report(Number(got), t0)
  nu.close(fd)
  await exited
}

const roles = {
  // 64-byte datagrams, parent -> child, Promise API: send / recvfrom, one await each.
  'dgram-async'() {
    return timedDgramSend('dgram-recv-async-child', async (fd) => {
      for (let i = 0; i < count; i++) await nu.send(fd, DGRAM)
    })
  },
  async 'dgram-recv-async-child'() {
    await nu.send(CHANNEL, ONE)
    let got = 0
    for (let i = 0; i < count; i++) if ((await nu.recvfrom(CHANNEL, 64)).data.length === 64) got++
    await nu.send(CHANNEL, countBytes(got))
  },
  // The same with the *Sync twins on blocking sockets.
  'dgram-sync'() {
    const { fd, exited } = withChild('dgram-recv-sync-child', [], dgramPair())
    nu.recvfromSync(fd, 1)
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < count; i++) nu.sendSync(fd, DGRAM)
    const got = nu.recvfromSync(fd, 8).data.readBigInt64LE()
    report(Number(got), t0)
    nu.close(fd)
    return exited
  },
  'dgram-recv-sync-child'() {
    nu.sendSync(CHANNEL, ONE)
    let got = 0
    for (let i = 0; i < count; i++) if (nu.recvfromSync(CHANNEL, 64).data.length === 64) got++
    nu.sendSync(CHANNEL, countBytes(got))
  },

  // The same sender; the receiver is the evented socket (createSocket, 'message' events), which
  // reads with MSG_DONTWAIT until EAGAIN on each readiness, as unix-dgram does.
  async 'dgram-events'() {
    // Abstract names; argv cannot carry their NUL, so the child adds it.
    const mine = abstractName('parent').slice(1)
    const theirs = abstractName('child').slice(1)
    const rx = nu.dgramSocket({ bind: `\0${mine}` })
    const many = arg === 'many'
    const { done: exited } = start(process.execPath, [...process.execArgv, __filename, 'dgram-events-child', String(count), theirs, mine], { stdio: ['ignore', 'inherit', 'inherit'] })
    await nu.recvfrom(rx, 1) // the child is bound
    const tx = nu.dgramSocket({ connect: `\0${theirs}` })
    const t0 = process.hrtime.bigint()
    if (many) await sendBatches(tx, { data: DGRAM })
    else for (let i = 0; i < count; i++) await nu.send(tx, DGRAM)
    const got = (await nu.recvfrom(rx, 8)).data.readBigInt64LE()
    report(Number(got), t0)
    nu.close(tx)
    nu.close(rx)
    await exited
  },
  // Batched, beyond Hare: sendfdsMany of 32 datagrams per call; the child takes them with
  // recvfromMany (up to MAX_BATCH per call) or, with ARG "events", the evented socket.
  'dgram-many'() {
    return timedDgramSend('dgram-recv-many-child', (fd) => sendBatches(fd, { data: DGRAM }))
  },
  async 'dgram-recv-many-child'() {
    await nu.send(CHANNEL, ONE)
    let got = 0
    for (let i = 0; i < count; ) {
      const ds = await nu.recvfromMany(CHANNEL, nu.MAX_BATCH, 64)
      for (const d of ds) if (d.data.length === 64) got++
      i += ds.length
    }
    await nu.send(CHANNEL, countBytes(got))
  },
  'dgram-events-child'() {
    const parent = `\0${process.argv[5]}`
    let got = 0
    const s = nu.createSocket('unix_dgram', (msg) => {
      if (msg.length === 64) got++
      if (got === count) {
        s.send(countBytes(got), 0, 8, parent)
        s.close()
      }
    })
    s.bind(`\0${arg}`)
    s.send(ONE, 0, 1, parent)
  },

  // seqpacket, 1 fd per message: sendfds / recvfds over socketpair(seqpacket).
  async 'seqpacket-async'() {
    const { fds, done } = devnullFds(Number(arg))
    const { fd, exited } = withChild('fdrecv-async-child', [arg], nu.socketpair(nu.seqpacket))
    await awaitByte(fd)
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < count; i++) await nu.sendfds(fd, ONE, fds)
    const received = await awaitCount(fd)
    report(count, t0, { fds: received })
    nu.close(fd)
    done()
    await exited
  },

  // seqpacket, batched: the fdpass-many roles over socketpair(seqpacket).
  async 'seqpacket-many'() {
    const { fds, done } = devnullFds(Number(arg))
    const { fd, exited } = withChild('fdrecv-many-child', [arg], nu.socketpair(nu.seqpacket))
    await awaitByte(fd)
    const t0 = process.hrtime.bigint()
    await sendBatches(fd, { data: ONE, fds })
    const received = await awaitCount(fd)
    report(count, t0, { fds: received })
    nu.close(fd)
    done()
    await exited
  },

  // fd passing, Promise API: one awaited sendfds per message.
  'fdpass-async'() {
    return timedFdSend('fdrecv-async-child', async (fd, fds) => {
      for (let i = 0; i < count; i++) await nu.sendfds(fd, ONE, fds)
    })
  },
  async 'fdrecv-async-child'() {
    const max = Number(arg)
    await nu.sendfds(CHANNEL, ONE, [])
    let got = 0
    for (let i = 0; i < count; i++) {
      const { data, fds } = await nu.recvfds(CHANNEL, 1, max)
      if (data.length === 0) return // the parent went away
      for (const f of fds) nu.close(f)
      got += fds.length
    }
    await nu.sendfds(CHANNEL, countBytes(got), [])
  },

  // fd passing, batched: sendfdsMany of 32 messages, recvfdsMany of up to MAX_BATCH, closeFds.
  'fdpass-many'() {
    return timedFdSend('fdrecv-many-child', (fd, fds) => sendBatches(fd, { data: ONE, fds }))
  },
  async 'fdrecv-many-child'() {
    const max = Number(arg)
    await nu.sendfds(CHANNEL, ONE, [])
    let got = 0
    for (let i = 0; i < count; ) {
      const msgs = await nu.recvfdsMany(CHANNEL, nu.MAX_BATCH, 1, max)
      const fds = []
      for (const m of msgs) {
        if (m.data.length === 0) return // the parent went away
        for (const f of m.fds) fds.push(f)
      }
      nu.closeFds(fds)
      got += fds.length
      i += msgs.length
    }
    await nu.sendfds(CHANNEL, countBytes(got), [])
  },

  // fd passing, sync API on blocking sockets, messages built once and reused.
  'fdpass-sync'() {
    return sendSync('fdrecv-sync-child')
  },
  // The same sender; the receiver is the bare native calls with no API around them (not a
  // public API): the least any N-API receiver pays per message.
  'fdpass-floor'() {
    return sendSync('fdrecv-floor-child')
  },
  'fdrecv-floor-child'() {
    const binding = require(path.join(__dirname, '..', 'binding.js'))
    const max = Number(arg)
    const bufs = [Buffer.alloc(1)]
    const got = new Int32Array(2 + max)
    nu.sendmsgSync(CHANNEL, msgOf(ONE))
    let fds = 0
    for (let i = 0; i < count; i++) {
      if (binding.recvmsgSync(CHANNEL, bufs, max, got) <= 0) return // the parent went away
      for (let k = 0; k < got[1]; k++) binding.close(got[2 + k])
      fds += got[1]
    }
    nu.sendmsgSync(CHANNEL, msgOf(countBytes(fds)))
  },
  'fdrecv-sync-child'() {
    const max = Number(arg)
    const msg = msgOf(Buffer.alloc(1))
    nu.allocfiles(msg, max)
    nu.sendmsgSync(CHANNEL, msgOf(ONE))
    let got = 0
    for (let i = 0; i < count; i++) {
      if (nu.recvmsgSync(CHANNEL, msg) === 0) return // the parent went away
      const fds = nu.recvfiles(msg, max)
      for (const f of fds) nu.close(f)
      got += fds.length
    }
    nu.sendmsgSync(CHANNEL, msgOf(countBytes(got)))
  },

  // fd passing with Node's own handle passing (one handle per message).
  async 'fdpass-cp'() {
    const child = fork(__filename, ['cp-child', String(count)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const [a, b] = nu.socketpair()
    const handle = new net.Socket({ fd: a, readable: false, writable: false })
    await new Promise((resolve) => child.once('message', resolve))
    const finished = new Promise((resolve) => child.once('message', resolve))
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < count; i++) child.send('h', handle, { keepOpen: true })
    const { got } = await finished
    report(count, t0, { fds: got })
    handle.destroy()
    nu.close(b)
    child.disconnect()
  },
  'cp-child'() {
    let got = 0
    process.on('message', (_m, handle) => {
      if (handle) handle.destroy()
      if (handle) got++
      if (--left === 0) process.send({ got })
    })
    let left = count
    process.send('ready')
  },

  // 64-byte ping-pong, Promise API with messages built once.
  async 'pingpong-async'() {
    const { fd, exited } = withChild('echo-async-child', [])
    const out = msgOf(Buffer.alloc(64))
    const inbuf = Buffer.alloc(64)
    await awaitByte(fd)
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < count; i++) {
      await nu.sendmsg(fd, out)
      for (let got = 0; got < 64; ) got += await recvSome(fd, inbuf.subarray(got))
    }
    report(count, t0)
    nu.close(fd)
    await exited
  },
  async 'echo-async-child'() {
    const buf = Buffer.alloc(64)
    await nu.sendfds(CHANNEL, ONE, [])
    for (let i = 0; i < count; i++) {
      for (let got = 0; got < 64; ) got += await recvSome(CHANNEL, buf.subarray(got))
      await nu.sendfds(CHANNEL, buf, [])
    }
  },

  // 64-byte ping-pong with Node net over a Unix path.
  'pingpong-net'() {
    return streamPingPong('echo-net-child', (address) => net.connect(address))
  },
  'echo-net-child'() {
    const server = net.createServer((s) => s.pipe(s))
    server.listen(arg, () => process.send('ready'))
  },

  // Bulk 64 KiB transfer: sendmsg/recvmsg with partial sends counted.
  async 'bulk-async'() {
    const total = count * 2 ** 20
    const { fd, exited } = withChild('sink-async-child', [])
    const msg = msgOf(CHUNK)
    await awaitByte(fd)
    const t0 = process.hrtime.bigint()
    for (let sent = 0; sent < total; ) sent += await nu.sendmsg(fd, msg)
    await awaitByte(fd)
    report(total, t0)
    nu.close(fd)
    await exited
  },
  async 'sink-async-child'() {
    const total = count * 2 ** 20
    const msg = msgOf(Buffer.alloc(65536))
    await nu.sendfds(CHANNEL, ONE, [])
    for (let got = 0; got < total; ) {
      const n = await nu.recvmsg(CHANNEL, msg)
      if (n === 0) return // the parent went away
      got += n
    }
    await nu.sendfds(CHANNEL, ONE, [])
  },

  'bulk-net'() {
    return streamBulk('sink-net-child', (address) => net.connect(address))
  },
  'sink-net-child'() {
    sinkServer(net.createServer)
  },
  // UnixSocket (the stream API): the same three shapes as the net rows, stream on both ends.
  'bulk-stream'() {
    return streamBulk('sink-stream-child', (address) => nu.createConnection(address))
  },
  'sink-stream-child'() {
    sinkServer(nu.createServer)
  },
  'pingpong-stream'() {
    return streamPingPong('echo-stream-child', (address) => nu.createConnection(address))
  },
  'echo-stream-child'() {
    const server = nu.createServer((s) => s.pipe(s))
    server.listen(arg, () => process.send('ready'))
  },
  // writeWithFds with backpressure; the child counts what 'fds' delivered and closes each.
  async 'fdpass-stream'() {
    const { fds, done } = devnullFds(Number(arg))
    const { fd, exited } = withChild('fdrecv-stream-child', [arg])
    const sock = new nu.UnixSocket({ fd })
    const ack = Buffer.alloc(9)
    let got = 0
    let acked
    const ready = new Promise((resolve) => (acked = resolve))
    sock.on('data', (d) => {
      got += d.copy(ack, got)
      if (got === 1 || got === 9) acked()
    })
    await ready // the child is up
    const last = new Promise((resolve) => (acked = resolve))
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < count; i++) {
      if (!sock.writeWithFds(ONE, fds)) await new Promise((resolve) => sock.once('drain', resolve))
    }
    await last
    report(count, t0, { fds: Number(ack.readBigInt64LE(1)) })
    sock.destroy()
    done()
    await exited
  },
  'fdrecv-stream-child'() {
    const sock = new nu.UnixSocket({ fd: CHANNEL })
    let fdsGot = 0
    let bytes = 0
    sock.on('fds', (fds) => {
      for (const f of fds) nu.close(f)
      fdsGot += fds.length
    })
    sock.on('data', (d) => {
      bytes += d.length
      if (bytes === count) sock.end(countBytes(fdsGot))
    })
    sock.on('end', () => sock.destroy())
    sock.write(ONE)
  },

  // connect + accept + close, 32 clients at a time.
  async 'connect-async'() {
    const name = abstractName('bench')
    const listener = nu.listen(name, nu.backlog(511))
    const { child, firstLine } = start(process.execPath, [__filename, 'accept-async-child', '0'], { stdio: ['ignore', 'pipe', 'inherit', listener] })
    nu.close(listener)
    await firstLine
    let made = 0
    let started = 0
    const failures = {}
    const t0 = process.hrtime.bigint()
    async function client() {
      while (started < count) {
        started++
        try {
          nu.close(await nu.connect(name))
          made++
        } catch (e) {
          started-- // counted and retried: the count is of connections made
          failures[e.code] = (failures[e.code] || 0) + 1
        }
      }
    }
    await Promise.all(Array.from({ length: 32 }, client))
    report(made, t0, { failures })
    child.kill()
  },
  async 'accept-async-child'() {
    dieWithParent()
    console.log('ready')
    for (;;) nu.close(await nu.accept(CHANNEL))
  },

  async 'connect-net'() {
    const { child, address } = await netChild('accept-net-child')
    let made = 0
    let started = 0
    const failures = {}
    const t0 = process.hrtime.bigint()
    function once() {
      return new Promise((resolve) => {
        const s = net.connect(address)
        s.once('connect', () => {
          s.destroy()
          resolve(null)
        })
        s.once('error', (e) => resolve(e.code || 'error'))
      })
    }
    async function client() {
      while (started < count) {
        started++
        const code = await once()
        if (code === null) made++
        else {
          started-- // counted and retried, as a user must: the count is of connections made
          failures[code] = (failures[code] || 0) + 1
        }
      }
    }
    await Promise.all(Array.from({ length: 32 }, client))
    report(made, t0, { failures })
    child.kill()
  },
  'accept-net-child'() {
    const server = net.createServer((s) => s.destroy())
    server.listen(arg, () => process.send('ready'))
  },
}

/** recvmsg into one buffer, built fresh (the view moves as partial reads arrive); EOF throws. */
async function recvSome(fd, view) {
  const n = await nu.recvmsg(fd, msgOf(view))
  if (n === 0) throw new Error('peer went away')
  return n
}

/** Forks a role that serves Node net on a fresh Unix path and says 'ready'. */
async function netChild(childRole) {
  const address = tmpPath('s')
  const child = fork(__filename, [childRole, String(count), address], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  child.on('error', () => {})
  await new Promise((resolve) => child.once('message', resolve))
  child.on('exit', () => fs.rmSync(path.dirname(address), { recursive: true, force: true }))
  return { child, address }
}

// Forked children end with their parent's IPC channel.
if (role.endsWith('-child') && process.send) process.on('disconnect', () => process.exit(0))

Promise.resolve(roles[role]()).catch((err) => {
  console.error(err)
  process.exit(1)
})
