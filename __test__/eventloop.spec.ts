import test from 'ava'
import { startFixture, within } from './helpers'

// Each scenario (fixtures/eventloop.cjs) runs in its own process: the properties are about a
// whole event loop.

test('10,000 pending accepts hold no threadpool thread; the first 50 connects resolve exactly the first 50', async (t) => {
  const child = startFixture('eventloop.cjs', ['pool'], { env: { UV_THREADPOOL_SIZE: '1' }, timeout: 30000 })
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
  const r = await startFixture('eventloop.cjs', ['blast'], { timeout: 30000 }).done
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
  const child = startFixture('eventloop.cjs', ['race'])
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
