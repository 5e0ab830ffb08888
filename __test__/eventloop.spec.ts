import test from 'ava'
import { startNode, within } from './helpers'

// Each scenario runs in its own process: the properties are about a whole event loop.

test('10,000 pending accepts hold no threadpool thread; the first 50 connects resolve exactly the first 50', async (t) => {
  const script = `
    const u = require(process.env.NET_UNIX)
    const fs = require('fs'), dns = require('dns')
    const name = '\\0net-unix-pool-' + process.pid
    const l = u.listen(name, u.backlog(128))
    const settled = []
    const pending = Array.from({ length: 10000 }, (_, i) =>
      u.accept(l).then((fd) => { settled.push(i); return fd }, (e) => e))
    const t0 = Date.now()
    fs.promises.readFile(__filename ?? process.execPath).catch(() => fs.promises.readFile(process.execPath, { flag: 'r' }))
      .then(() => new Promise((r, j) => dns.lookup('localhost', (e) => (e ? j(e) : r()))))
      .then(async () => {
        const poolMs = Date.now() - t0
        const clients = Array.from({ length: 50 }, () => u.connectSync(name))
        await pending[49]
        await new Promise((r) => setImmediate(r))
        const first = settled.slice()
        u.close(l)
        const rest = await Promise.all(pending.slice(50))
        const accepted = await Promise.all(pending.slice(0, 50))
        accepted.concat(clients).forEach(u.close)
        console.log(JSON.stringify({ poolMs, first, restCodes: [...new Set(rest.map((e) => e.code))] }))
      })
  `
  const child = startNode(script, { env: { UV_THREADPOOL_SIZE: '1' }, timeout: 30000 })
  const r = await child.done
  t.is(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  t.true(out.poolMs < 2000, `fs.readFile + dns.lookup took ${out.poolMs} ms`)
  t.deepEqual(
    out.first,
    Array.from({ length: 50 }, (_, i) => i),
  )
  t.deepEqual(out.restCodes, ['ERR_SOCKET_CLOSED'])
})

test('timers keep firing while a child blasts records at an await-recvmsg loop', async (t) => {
  const script = `
    const u = require(process.env.NET_UNIX)
    const { spawn } = require('child_process')
    const { monitorEventLoopDelay } = require('perf_hooks')
    const [ours, theirs] = u.socketpair()
    const blaster = spawn('python3', ['-c', 'import socket\\ns=socket.socket(fileno=3)\\nb=bytes(64)\\nfor _ in range(50000): s.sendall(b)\\ns.close()'], { stdio: ['ignore', 'inherit', 'inherit', theirs] })
    u.close(theirs)
    const h = monitorEventLoopDelay({ resolution: 1 })
    h.enable()
    let ticks = 0
    const iv = setInterval(() => ticks++, 1)
    ;(async () => {
      const m = u.newmsg()
      u.addvector(m, Buffer.alloc(64))
      const t0 = Date.now()
      let bytes = 0, n
      while ((n = await u.recvmsg(ours, m)) > 0) bytes += n
      const ms = Date.now() - t0
      clearInterval(iv)
      h.disable()
      u.close(ours)
      console.log(JSON.stringify({ bytes, ms, ticks, maxDelayMs: h.max / 1e6, p99DelayMs: h.percentile(99) / 1e6 }))
    })()
  `
  const r = await startNode(script, { timeout: 30000 }).done
  t.is(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  t.is(out.bytes, 50000 * 64)
  // The fast path is capped per loop turn, so the 1 ms interval keeps running throughout. The
  // 99th percentile says so; a lone outlier (the 2-core machine busy with the other spec
  // files' processes) is allowed up to a second, far below what a starved loop shows.
  t.true(out.p99DelayMs < 50, `99th percentile event-loop delay ${out.p99DelayMs} ms`)
  t.true(out.maxDelayMs < 1000, `max event-loop delay ${out.maxDelayMs} ms`)
  t.true(out.ticks >= Math.min(out.ms, 1000) / 10, `${out.ticks} ticks in ${out.ms} ms`)
})

test('accept on a listener created blocking never freezes the loop when another process wins the race', async (t) => {
  // A pre-fork rival (Python) shares the blocking listener. The race is staged, not hoped for:
  // a receive on another socket and our accept wait on the loop; the other socket becomes ready,
  // then a connection arrives, so one poll reports both, the receive first. Its continuation runs
  // before the accept's callback and has the rival take the connection (waiting until it has).
  // Our accept then finds nothing: it must wait again, not block the whole loop in accept4.
  const script = `
    const u = require(process.env.NET_UNIX)
    const { spawn } = require('child_process')
    const msgOf = (s) => { const m = u.newmsg(); u.addvector(m, Buffer.from(s)); return m }
    const name = '\\0net-unix-race-' + process.pid
    const l = u.listen(name, u.sockflag.NOCLOEXEC)
    const [control, rivalControl] = u.socketpair(u.sockflag.NOCLOEXEC)
    const rival = spawn('python3', ['-c', [
      'import socket, select',
      'l = socket.socket(fileno=3)',
      'control = socket.socket(fileno=4)',
      'while control.recv(1) == b"g":',
      '    while True:',
      '        select.select([l], [], [])',
      '        try: c, _ = l.accept()',
      '        except BlockingIOError: continue',
      '        break',
      '    c.close()',
      '    control.send(b"t")',
    ].join('\\n')], { stdio: ['ignore', 'inherit', 'inherit', l, rivalControl] })
    u.close(rivalControl)
    const [trigger, triggerPeer] = u.socketpair()
    let theirs = 0
    const mine = u.accept(l)
    const triggered = u.recvfds(trigger, 1, 0).then(() => {
      u.sendmsgSync(control, msgOf('g'))
      const reply = u.newmsg(); const buf = Buffer.alloc(1); u.addvector(reply, buf)
      if (u.recvmsgSync(control, reply) === 1 && buf.toString() === 't') theirs++
    })
    ;(async () => {
      // Two turns: both watchers are registered with epoll before anything becomes ready.
      for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r))
      u.sendmsgSync(triggerPeer, msgOf('x'))
      const lost = u.connectSync(name)
      await triggered
      // The loop is alive while our accept waits again: a timer fires.
      const timerFired = await new Promise((r) => setTimeout(() => r(true), 20))
      const waitingAgain = u.pending(l)
      const won = u.connectSync(name)
      const a = await mine
      u.sendmsgSync(won, msgOf('w'))
      const m = u.newmsg(); const buf = Buffer.alloc(1); u.addvector(m, buf)
      u.recvmsgSync(a, m)
      u.sendmsgSync(control, msgOf('q'))
      ;[a, won, lost, l, control, trigger, triggerPeer].forEach(u.close)
      console.log(JSON.stringify({ theirs, timerFired, waitingAgain, ours: buf.toString() }))
    })()
  `
  const child = startNode(script)
  try {
    const r = await within(child.done, 20000, 'the child (its loop froze in accept4?)')
    t.is(r.code, 0, r.stderr)
    t.deepEqual(JSON.parse(r.stdout), { theirs: 1, timerFired: true, waitingAgain: 1, ours: 'w' })
  } finally {
    child.child.kill('SIGKILL')
  }
})

test('waiters on one socket are served in call order', async (t) => {
  const u = await import('../index.js')
  const [a, b] = u.socketpair()
  const bufs = [0, 1, 2].map(() => Buffer.alloc(1))
  const recvs = bufs.map((buf) => {
    const m = u.newmsg()
    u.addvector(m, buf)
    return u.recvmsg(b, m)
  })
  t.is(u.pending(b), 3)
  const m = u.newmsg()
  u.addvector(m, Buffer.from('xyz'))
  u.sendmsgSync(a, m)
  t.deepEqual(await Promise.all(recvs), [1, 1, 1])
  t.deepEqual(bufs.map((x) => x.toString()).join(''), 'xyz')
  t.is(u.pending(b), 0)
  ;[a, b].forEach(u.close)
})
