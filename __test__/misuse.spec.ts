import test from 'ava'
import { startNode } from './helpers'

// Each scenario runs in a child: without the private dup and the identity check, these abort the
// process (exit 134) or read another socket's data. Exit code 0 and the printed facts prove neither.

async function scenario(source: string): Promise<Record<string, unknown>> {
  const r = await startNode(
    `const u = require(process.env.NET_UNIX); const fs = require('fs'), net = require('net');\n${source}`,
    {
      timeout: 30000,
    },
  ).done
  if (r.code !== 0) throw new Error(`child exited ${r.code ?? r.signal}: ${r.stderr}`)
  return JSON.parse(r.stdout) as Record<string, unknown>
}

test('fs.closeSync on an fd with a pending recv, in the same tick, does not crash', async (t) => {
  const out = await scenario(`
    const [a, b] = u.socketpair()
    const ac = new AbortController()
    const m = u.newmsg(); u.addvector(m, Buffer.alloc(4))
    const p = u.recvmsg(b, m, { signal: ac.signal })
    fs.closeSync(b)
    setTimeout(() => ac.abort(), 20)
    p.then(() => console.log(JSON.stringify({ r: 'resolved' })), (e) => { u.close(a); console.log(JSON.stringify({ r: e.name })) })
  `)
  t.deepEqual(out, { r: 'AbortError' })
})

test('an fd number closed behind our back and reused at once gets no cross-talk', async (t) => {
  const out = await scenario(`
    const [a, b] = u.socketpair()
    const old = u.newmsg(); const oldBuf = Buffer.alloc(8); u.addvector(old, oldBuf)
    const ac = new AbortController()
    const stale = u.recvmsg(b, old, { signal: ac.signal }).then((n) => 'stale got ' + oldBuf.toString('utf8', 0, n), (e) => e.name)
    fs.closeSync(b)
    const [c, d] = u.socketpair()  // reuses b's number (lowest free fd)
    const fresh = u.newmsg(); const freshBuf = Buffer.alloc(8); u.addvector(fresh, freshBuf)
    const p = u.recvmsg(c === b ? c : d, fresh)
    const peer = c === b ? d : c
    const w = u.newmsg(); u.addvector(w, Buffer.from('new'))
    u.sendmsgSync(peer, w)
    p.then(async (n) => {
      ac.abort()
      const staleResult = await stale
      ;[a, c, d].forEach(u.close)
      console.log(JSON.stringify({ reused: c === b || d === b, fresh: freshBuf.toString('utf8', 0, n), stale: staleResult }))
    })
  `)
  t.true(out.reused)
  t.is(out.fresh, 'new')
  t.not(out.stale, 'stale got new')
})

test('an fd whose operations settled works with new net.Socket({ fd })', async (t) => {
  const out = await scenario(`
    const [a, b] = u.socketpair()
    ;(async () => {
      const m = u.newmsg(); u.addvector(m, Buffer.alloc(4))
      const p = u.recvmsg(b, m)            // waits on our poll handle, then settles
      await u.sendfds(a, Buffer.from('one'), [])
      await p
      const s = new net.Socket({ fd: b, readable: true, writable: true })
      s.once('data', (d) => {
        console.log(JSON.stringify({ viaNet: String(d), pending: u.pending(b) }))
        s.destroy(); u.close(a)
      })
      await u.sendfds(a, Buffer.from('two'), [])
    })()
  `)
  t.deepEqual(out, { viaNet: 'two', pending: 0 })
})

test('a received fd and a net-unix listener work with net.Socket and server.listen({ fd })', async (t) => {
  const out = await scenario(`
    ;(async () => {
      const name = '\\0net-unix-interop-' + process.pid
      const l = u.listen(name)
      const c0 = u.connectSync(name)
      u.close(await u.accept(l))           // one accept settled on l, then hand l to net
      u.close(c0)
      const server = net.createServer((sock) => sock.end('hello from net'))
      server.listen({ fd: l })
      await new Promise((r) => server.once('listening', r))
      const [a, b] = u.socketpair()
      const c = await u.connect(name)
      await u.sendfds(a, Buffer.from('x'), [c])
      u.close(c)
      const got = await u.recvfds(b, 1, 1)
      const s = new net.Socket({ fd: got.fds[0], readable: true, writable: true })
      let text = ''
      s.on('data', (d) => (text += d))
      s.on('end', () => { s.destroy(); server.close(); u.close(a); u.close(b); console.log(JSON.stringify({ text })) })
    })()
  `)
  t.deepEqual(out, { text: 'hello from net' })
})

test('a pending operation keeps the process alive, and nothing does once it settled', async (t) => {
  const out = await scenario(`
    const [a, b] = u.socketpair()
    const m = u.newmsg(); u.addvector(m, Buffer.alloc(1))
    u.recvmsg(b, m).then(() => { u.close(a); u.close(b); console.log(JSON.stringify({ settled: true })) })
    // Only a child process, unref'd, will send: the pending recv alone must hold the loop open.
    const peer = require('child_process').spawn('python3', ['-c', 'import socket,time; s=socket.socket(fileno=3); time.sleep(0.2); s.send(b"x")'], { stdio: ['ignore', 'ignore', 'ignore', a] })
    peer.unref()
  `)
  t.deepEqual(out, { settled: true })
})

test('ending a stale operation never removes the epoll registration of a net.Socket that reused the fd number', async (t) => {
  const out = await scenario(`
    const [a, b] = u.socketpair()
    const ac = new AbortController()
    const m = u.newmsg(); u.addvector(m, Buffer.alloc(4))
    const stale = u.recvmsg(b, m, { signal: ac.signal }).catch((e) => e.name)
    fs.closeSync(b)
    const [c, d] = u.socketpair()
    const mine = c === b ? c : d, peer = c === b ? d : c
    const s = new net.Socket({ fd: mine, readable: true, writable: true })
    s.once('data', async (chunk) => {
      console.log(JSON.stringify({ reused: mine === b, viaNet: String(chunk), stale: await stale }))
      s.destroy(); u.close(peer); u.close(a)
    })
    // Our watcher (on a private dup of the old socket) is closed now; Node's must survive it.
    ac.abort()
    setImmediate(() => u.sendfds(peer, Buffer.from('still here'), []))
  `)
  t.deepEqual(out, { reused: true, viaNet: 'still here', stale: 'AbortError' })
})
