import test from 'ava'
import { startNode } from './helpers'

// At most 32 operations complete at once per loop turn; the ones after that are retried on the
// next turn, after its timers, without a poll watcher. Each scenario runs in a fresh process, so
// the budget is whole when its script starts.

async function scenario(source: string): Promise<Record<string, unknown>> {
  const prelude = `const u = require(process.env.NET_UNIX); const fs = require('fs');
    const bytes = (s) => Buffer.from(s)
    const fill32 = (a, b) => { u.sendmsgSync(a, msgOf('x'.repeat(32))); return Array.from({ length: 32 }, () => u.recvfds(b, 1, 0)) }
    function msgOf(s) { const m = u.newmsg(); u.addvector(m, bytes(s)); return m }`
  const r = await startNode(`${prelude}\n${source}`, { timeout: 30000 }).done
  if (r.code !== 0) throw new Error(`child exited ${r.code ?? r.signal}: ${r.stderr}`)
  return JSON.parse(r.stdout) as Record<string, unknown>
}

test('past the budget, receives wait for the next turn and still come in call order', async (t) => {
  const out = await scenario(`
    const [a, b] = u.socketpair()
    const text = Array.from({ length: 100 }, (_, i) => String.fromCharCode(33 + (i % 94))).join('')
    u.sendmsgSync(a, msgOf(text))
    const events = []
    setImmediate(() => events.push('immediate'))
    const recvs = Array.from({ length: 100 }, (_, i) => u.recvfds(b, 1, 0).then((r) => { events.push(i); return r.data.toString() }))
    const deferred = u.pending(b)
    Promise.all(recvs).then((got) => {
      ;[a, b].forEach(u.close)
      console.log(JSON.stringify({ deferred, inOrder: got.join('') === text, immediateAt: events.indexOf('immediate'), order: events.filter((e) => e !== 'immediate') }))
    })
  `)
  t.is(out.deferred, 68)
  t.true(out.inOrder)
  // The first 32 settle in this turn's microtasks; the loop turns before the rest.
  t.is(out.immediateAt, 32)
  t.deepEqual(
    out.order,
    Array.from({ length: 100 }, (_, i) => i),
  )
})

test('a deferred receive that finds nothing waits on the socket, behind none and ahead of later calls', async (t) => {
  const out = await scenario(`
    const [a, b] = u.socketpair()
    const first = fill32(a, b)
    const late = [u.recvfds(b, 1, 0), u.recvfds(b, 1, 0)]   // deferred, then EAGAIN: a watcher
    Promise.all(first).then(async () => {
      await new Promise((r) => setImmediate(r))
      await new Promise((r) => setImmediate(r))
      const waiting = u.pending(b)
      const third = u.recvfds(b, 1, 0)
      u.sendmsgSync(a, msgOf('123'))
      const got = (await Promise.all([...late, third])).map((r) => r.data.toString()).join('')
      ;[a, b].forEach(u.close)
      console.log(JSON.stringify({ waiting, got }))
    })
  `)
  t.deepEqual(out, { waiting: 2, got: '123' })
})

test('abort reaches a deferred operation, which then consumes nothing', async (t) => {
  const out = await scenario(`
    const [a, b] = u.socketpair()
    const first = fill32(a, b)
    const acs = [0, 1, 2].map(() => new AbortController())
    const deferred = acs.map((ac) => u.recvfds(b, 1, 0, { signal: ac.signal }).then((r) => r.data.toString(), (e) => e.name))
    const before = u.pending(b)
    acs[1].abort()
    const after = u.pending(b)
    u.sendmsgSync(a, msgOf('pq'))
    Promise.all([...first, ...deferred]).then((got) => {
      ;[a, b].forEach(u.close)
      console.log(JSON.stringify({ before, after, got: got.slice(32) }))
    })
  `)
  t.deepEqual(out, { before: 3, after: 2, got: ['p', 'AbortError', 'q'] })
})

test('close rejects deferred operations with ERR_SOCKET_CLOSED', async (t) => {
  const out = await scenario(`
    const [a, b] = u.socketpair()
    const first = fill32(a, b)
    const doomed = [u.recvfds(b, 1, 0), u.recvfds(b, 1, 0)]
    const before = u.pending(b)
    u.close(b)
    Promise.all([...first, ...doomed.map((p) => p.then(() => 'resolved', (e) => e.code))]).then((got) => {
      u.close(a)
      console.log(JSON.stringify({ before, codes: got.slice(32), pending: u.pending(b) }))
    })
  `)
  t.deepEqual(out, { before: 2, codes: ['ERR_SOCKET_CLOSED', 'ERR_SOCKET_CLOSED'], pending: 0 })
})

test('a deferred receive whose fd number was closed and reused fails with EBADF and reads nothing', async (t) => {
  const out = await scenario(`
    const [a, b] = u.socketpair()
    const first = fill32(a, b)
    const stale = u.recvfds(b, 8, 0).then((r) => 'got ' + r.data.toString(), (e) => e.code)
    fs.closeSync(b)
    const [c, d] = u.socketpair()   // takes b's number: the lowest free fd
    const mine = c === b ? c : d, peer = c === b ? d : c
    u.sendmsgSync(peer, msgOf('new'))
    Promise.allSettled(first).then(async () => {
      const result = await stale
      const m = u.newmsg(); const buf = Buffer.alloc(8); u.addvector(m, buf)
      const n = u.recvmsgSync(mine, m)
      ;[a, c, d].forEach(u.close)
      console.log(JSON.stringify({ reused: mine === b, stale: result, fresh: buf.toString('utf8', 0, n) }))
    })
  `)
  t.deepEqual(out, { reused: true, stale: 'EBADF', fresh: 'new' })
})

test('a deferred send carries its fds even when the caller closes them right after the call', async (t) => {
  const out = await scenario(`
    const [a, b] = u.socketpair()
    const sends = Array.from({ length: 32 }, () => u.sendfds(a, bytes('.'), []))
    const file = fs.openSync(process.env.NET_UNIX + '/package.json', 'r')
    const deferred = u.sendfds(a, bytes('f'), [file])
    const waiting = u.pending(a)
    fs.closeSync(file)
    Promise.all([...sends, deferred]).then(async () => {
      const dots = await u.recvfds(b, 32, 0)
      const { data, fds } = await u.recvfds(b, 1, 1)
      const same = fs.readFileSync(fds[0], 'utf8') === fs.readFileSync(process.env.NET_UNIX + '/package.json', 'utf8')
      fds.forEach(u.close)
      ;[a, b].forEach(u.close)
      console.log(JSON.stringify({ waiting, dots: dots.data.length, data: data.toString(), same }))
    })
  `)
  t.deepEqual(out, { waiting: 1, dots: 32, data: 'f', same: true })
})
