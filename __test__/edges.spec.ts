// Promises of the docs that no other spec pinned down (issue 21's "Also" list): each test names
// the behaviour it holds.
import test from 'ava'
import { once } from 'node:events'
import { closeSync, openSync } from 'node:fs'
import * as nu from '../index.js'
import { abstractName, ROOT, run, runNode, streamPair, turnEnded, within } from './helpers'

test("a message kept from a 'message' listener stays intact while later datagrams come in", async (t) => {
  const rx = nu.createSocket('unix_dgram')
  t.teardown(() => rx.close())
  const name = abstractName('keep')
  const listening = once(rx, 'listening')
  rx.bind(name)
  await listening
  const tx = nu.dgramSocket()
  const kept: Buffer[] = []
  const texts = ['first', 'SECOND', '3rd']
  for (const text of texts) {
    const got = once(rx, 'message')
    nu.sendtoSync(tx, Buffer.from(text), name)
    kept.push(((await within(got, 10000, "'message'")) as [Buffer])[0])
  }
  t.deepEqual(kept.map(String), texts)
  rx.close()
  nu.close(tx)
})

test.serial("'writable' fires once per congestion, not on every turn after it", async (t) => {
  const name = abstractName('wr')
  const rx = nu.dgramSocket({ bind: name })
  const tx = nu.createSocket('unix_dgram')
  t.teardown(() => tx.close())
  tx.connect(name)
  let sent = 0
  let congested = false
  while (!congested) tx.send(Buffer.alloc(64), (err?: Error | null) => (err ? (congested = true) : sent++))
  let writable = 0
  tx.on('writable', () => writable++)
  const first = once(tx, 'writable')
  for (let i = 0; i < sent; i++) nu.recvfromSync(rx, 64)
  await within(first, 10000, "'writable'")
  for (let i = 0; i < 10; i++) await turnEnded()
  t.is(writable, 1, "'writable' events in the ten turns after the receiver drained")
  tx.close()
  nu.close(rx)
})

test('a 2,000-chunk corked write goes out whole (writev runs capped at IOV_MAX iovecs)', async (t) => {
  const [a, b] = streamPair({}, t)
  let got = ''
  b.on('data', (d: Buffer) => (got += d))
  const errors: Error[] = []
  a.on('error', (e) => errors.push(e))
  a.cork()
  for (let i = 0; i < 2000; i++) a.write(String(i % 10))
  a.uncork()
  a.end()
  await within(once(b, 'end'), 10000, "'end'")
  t.deepEqual(errors, [])
  t.is(got.length, 2000)
  t.is(got.slice(0, 12), '012345678901')
  a.destroy()
  b.destroy()
})

test('reading 256 MiB through a stream: ArrayBuffer memory after GC comes back near its start (replaced read pools are freed)', async (t) => {
  const r = await run(
    process.execPath,
    [
      '--expose-gc',
      '-e',
      `const nu = require(process.env.NET_UNIX)
      const [fa, fb] = nu.socketpair()
      const a = new nu.UnixSocket({ fd: fa }), b = new nu.UnixSocket({ fd: fb })
      const chunk = Buffer.alloc(1 << 20, 1)
      global.gc()
      const start = process.memoryUsage().arrayBuffers
      let left = 256, got = 0
      const pump = () => { while (left > 0) { left--; if (!a.write(chunk)) return a.once('drain', pump) } a.end() }
      b.on('data', (d) => (got += d.length))
      b.on('end', () => { a.destroy(); b.destroy() })
      b.on('close', () => setImmediate(() => {
        global.gc(); global.gc()
        console.log(JSON.stringify({ got, grew: process.memoryUsage().arrayBuffers - start }))
      }))
      pump()`,
    ],
    { env: { ...process.env, NET_UNIX: ROOT }, timeout: 60_000 },
  )
  t.is(r.code, 0, r.stderr)
  const { got, grew } = JSON.parse(r.stdout)
  t.is(got, 256 << 20)
  t.true(grew < 16 << 20, `ArrayBuffer memory grew by ${(grew / 2 ** 20).toFixed(1)} MiB`)
})

test('an fd closed with closeFds rejects its pending operations as close() does, and is closed for real', async (t) => {
  const [a, b] = nu.socketpair()
  t.teardown(() => nu.close(a)) // also when an assertion fails: the peer hanging up ends a read left pending
  const pending = nu.recvfds(b, 16, 1)
  nu.closeFds([b])
  await t.throwsAsync(within(pending, 5000, 'recvfds on an fd closeFds closed'), { code: 'ERR_SOCKET_CLOSED' })
  // No dup kept it alive: the peer is gone.
  t.throws(() => nu.sendSync(a, Buffer.from('x')), { code: 'EPIPE' })
})

test('listenFds() returns [] when $LISTEN_PID names another process, even with $LISTEN_FDS set and fd 3 open', async (t) => {
  const file = openSync(__filename, 'r')
  const source = `console.log(JSON.stringify(require(process.env.NET_UNIX).listenFds()))`
  const forParent = await runNode(source, {
    env: { LISTEN_PID: String(process.pid), LISTEN_FDS: '1' },
    stdio: ['ignore', 'pipe', 'pipe', file],
  })
  t.is(forParent.code, 0, forParent.stderr)
  t.deepEqual(JSON.parse(forParent.stdout), [], 'LISTEN_PID of the parent')
  closeSync(file)
})

test('a socket unref()ed while connecting does not hold the process once connected, as net.Socket', async (t) => {
  const r = await runNode(
    `const nu = require(process.env.NET_UNIX)
    const name = '\\0net-unix-unref-' + process.pid
    const l = nu.listen(name) // nobody accepts: the connection just sits in the backlog
    const c = nu.createConnection(name)
    c.unref()
    c.on('connect', () => console.log('connected'))
    // A failure guard only: the process is expected to exit as soon as it has connected.
    setTimeout(() => { console.log('still alive: the unref() was lost'); process.exit(2) }, 5000).unref()`,
    { timeout: 20_000 },
  )
  t.is(r.stdout.trim(), 'connected')
  t.is(r.code, 0)
})

test('the persistent read meets EAGAIN after an fd-carrying message and reads on when more comes later', async (t) => {
  const [a, b] = streamPair({}, t)
  const file = openSync(__filename, 'r')
  const errors: Error[] = []
  b.on('error', (e) => errors.push(e))
  const fds = once(b, 'fds')
  const first = once(b, 'data')
  a.writeWithFds('with an fd', [file])
  nu.closeFds(((await within(fds, 10000, "'fds'")) as [number[]])[0])
  t.is(String(((await first) as [Buffer])[0]), 'with an fd')
  // The core read again at once after the fds and found the socket empty (EAGAIN).
  await turnEnded()
  let rest = ''
  b.on('data', (d: Buffer) => (rest += d))
  const ended = once(b, 'end')
  a.end('later')
  await within(ended, 10000, "'end'")
  t.is(rest, 'later')
  t.deepEqual(errors, [])
  b.destroy()
  closeSync(file)
})
