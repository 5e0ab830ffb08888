// Every path that makes or receives an fd, checked the same way (fdMode: close-on-exec and
// blocking mode as the kernel has them), not only the Promise API's.
import test from 'ava'
import { once } from 'node:events'
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as nu from '../index.js'
import { abstractName, fdMode, fixture, ROOT, run, within } from './helpers'

const CLOEXEC_BLOCKING = { cloexec: true, nonblock: false }

test('a UnixServer connection and a createConnection socket are close-on-exec and blocking', async (t) => {
  const name = abstractName('ff')
  const server = nu.createServer()
  t.teardown(() => server.close())
  server.listen(name)
  await once(server, 'listening')
  const accepted = once(server, 'connection')
  const client = nu.createConnection(name)
  t.teardown(() => client.destroy())
  const [[conn]] = (await within(Promise.all([accepted, once(client, 'connect')]), 10000, 'connect')) as [
    [nu.UnixSocket],
  ]
  t.deepEqual(fdMode(conn.fd), CLOEXEC_BLOCKING, 'accepted by UnixServer')
  t.deepEqual(fdMode(client.fd), CLOEXEC_BLOCKING, 'createConnection')
  conn.destroy()
  client.destroy()
  server.close()
})

test('dgramSocket: close-on-exec unless NOCLOEXEC, blocking unless NONBLOCK; createSocket is non-blocking', (t) => {
  const plain = nu.dgramSocket()
  const inheritable = nu.dgramSocket({ flags: nu.sockflag.NOCLOEXEC })
  const nonblocking = nu.dgramSocket({ flags: nu.sockflag.NONBLOCK, bind: true })
  t.deepEqual(fdMode(plain), CLOEXEC_BLOCKING)
  t.deepEqual(fdMode(inheritable), { cloexec: false, nonblock: false })
  t.deepEqual(fdMode(nonblocking), { cloexec: true, nonblock: true })
  const ev = nu.createSocket('unix_dgram')
  t.teardown(() => ev.close())
  t.deepEqual(fdMode(ev.fd!), { cloexec: true, nonblock: true })
  nu.closeFds([plain, inheritable, nonblocking])
  ev.close()
})

test("fds received through recvmmsg are close-on-exec: recvfdsMany, recvfromMany, createSocket's rinfo.fds, a UnixSocket's batched reads", async (t) => {
  const file = openSync(__filename, 'r')
  const [a, b] = nu.socketpair()
  await nu.sendfdsMany(a, [
    { data: Buffer.from('1'), fds: [file] },
    { data: Buffer.from('2'), fds: [file, file] },
  ])
  const many = await nu.recvfdsMany(b, 4, 1, 2)
  const got = many.flatMap((m) => m.fds)
  t.is(got.length, 3)
  for (const fd of got) t.deepEqual(fdMode(fd), CLOEXEC_BLOCKING, 'recvfdsMany')
  nu.closeFds(got)

  const name = abstractName('ffd')
  const rx = nu.dgramSocket({ bind: name })
  const tx = nu.dgramSocket()
  nu.sendtoSync(tx, Buffer.from('x'), name, { fds: [file] })
  nu.sendtoSync(tx, Buffer.from('y'), name, { fds: [file] })
  const dgrams = await nu.recvfromMany(rx, 4, 4, { maxFds: 1 })
  t.is(dgrams.length, 2)
  for (const d of dgrams) t.deepEqual(fdMode(d.fds[0]), CLOEXEC_BLOCKING, 'recvfromMany')
  nu.closeFds([...dgrams.flatMap((d) => d.fds), rx])

  // The evented socket reads with recvmmsg: queue the datagrams first, so they come in one batch.
  const ev = nu.createSocket({ type: 'unix_dgram', fds: true })
  t.teardown(() => ev.close())
  const evName = abstractName('ffe')
  const listening = once(ev, 'listening')
  ev.bind(evName)
  await listening
  const evFds: number[] = []
  const three = new Promise<void>((resolve) =>
    ev.on('message', (_msg, rinfo) => {
      evFds.push(...rinfo.fds!)
      if (evFds.length === 3) resolve()
    }),
  )
  for (let i = 0; i < 3; i++) nu.sendtoSync(tx, Buffer.from('z'), evName, { fds: [file] })
  await within(three, 10000, "three 'message's")
  for (const fd of evFds) t.deepEqual(fdMode(fd), CLOEXEC_BLOCKING, "createSocket's rinfo.fds")
  nu.closeFds(evFds)
  ev.close()
  nu.close(tx)

  // A UnixSocket reads on with recvmmsg once a read brought fds: queue five fd-carrying messages.
  const [c, d] = nu.socketpair()
  for (let i = 0; i < 5; i++) await nu.sendfds(c, Buffer.from(String(i)), [file])
  const reader = new nu.UnixSocket({ fd: d })
  t.teardown(() => reader.destroy())
  const streamFds: number[] = []
  const five = new Promise<void>((resolve) =>
    reader.on('fds', (fds: number[]) => {
      streamFds.push(...fds)
      if (streamFds.length === 5) resolve()
    }),
  )
  reader.resume()
  await within(five, 10000, "five 'fds' events")
  for (const fd of streamFds) t.deepEqual(fdMode(fd), CLOEXEC_BLOCKING, "a UnixSocket's 'fds'")
  nu.closeFds([...streamFds, a, b, c])
  reader.destroy()
  closeSync(file)
})

// Node makes the fds it inherits close-on-exec at startup; Bun and Deno leave them as they came,
// so listenFds() must do it (as sd_listen_fds does).
const runtimes: Record<string, string[]> = {
  bun: [join(ROOT, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun')],
  deno: [join(ROOT, 'node_modules', '@deno', 'linux-x64-glibc', 'deno'), 'run', '--allow-all'],
}
for (const [runtime, [cmd, ...args]] of Object.entries(runtimes)) {
  test(`${runtime}: listenFds() makes an inherited fd 3 close-on-exec and leaves it blocking`, async (t) => {
    const file = openSync(__filename, 'r')
    const denoDir = mkdtempSync(join(tmpdir(), 'net-unix-deno-'))
    const r = await run(cmd, [...args, fixture('listenfds-mode.cjs')], {
      env: { ...process.env, LISTEN_FDS: '1', DENO_DIR: denoDir },
      stdio: ['ignore', 'pipe', 'pipe', file],
      timeout: 60_000,
    })
    rmSync(denoDir, { recursive: true, force: true })
    closeSync(file)
    t.is(r.code, 0, r.stderr)
    const got = JSON.parse(r.stdout)
    t.deepEqual(got.fds, [3])
    t.deepEqual(got.before, { cloexec: false, nonblock: false }, 'inherited as a manager passes it')
    t.deepEqual(got.after, CLOEXEC_BLOCKING)
  })
}

test('the Promise and sync API: listen, connect, connectSync, accept, acceptSync, socketpair, recvfds and recvfrom fds, with and without flags', async (t) => {
  const name = abstractName('ffp')
  const l = nu.listen(name)
  const inheritableListener = nu.listen(abstractName('ffi'), nu.sockflag.NOCLOEXEC)
  const viaPromise = await nu.connect(name)
  const accepted = await nu.accept(l)
  const viaSync = nu.connectSync(name)
  const acceptedSync = nu.acceptSync(l, nu.sockflag.NONBLOCK)
  const [p, q] = nu.socketpair()
  const [np, nq] = nu.socketpair(nu.sockflag.NONBLOCK, nu.sockflag.NOCLOEXEC)
  const file = openSync(__filename, 'r')
  await nu.sendfds(p, Buffer.from('x'), [file])
  const { fds: streamFds } = await nu.recvfds(q, 1, 1)
  const rx = nu.dgramSocket({ bind: abstractName('ffr') })
  const tx = nu.dgramSocket()
  nu.sendtoSync(tx, Buffer.from('y'), nu.localaddr(rx)!, { fds: [file] })
  const { fds: dgramFds } = nu.recvfromSync(rx, 1, { maxFds: 1 })
  for (const [what, fd] of Object.entries({
    l,
    viaPromise,
    accepted,
    viaSync,
    p,
    q,
    streamFd: streamFds[0],
    dgramFd: dgramFds[0],
  }))
    t.deepEqual(fdMode(fd), CLOEXEC_BLOCKING, what)
  t.deepEqual(fdMode(inheritableListener), { cloexec: false, nonblock: false }, 'listen NOCLOEXEC')
  t.deepEqual(fdMode(acceptedSync), { cloexec: true, nonblock: true }, 'acceptSync NONBLOCK')
  t.deepEqual(fdMode(np), { cloexec: false, nonblock: true }, 'socketpair NONBLOCK NOCLOEXEC')
  nu.closeFds([
    tx,
    l,
    inheritableListener,
    viaPromise,
    accepted,
    viaSync,
    acceptedSync,
    p,
    q,
    np,
    nq,
    rx,
    ...streamFds,
    ...dgramFds,
  ])
  closeSync(file)
})
