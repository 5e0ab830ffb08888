import test from 'ava'
import { startFixture } from './helpers'

// At most 32 operations complete at once per loop turn; the ones after that are retried on the
// next turn, after its timers, without a poll watcher. Each scenario (in fixtures/budget.cjs) runs
// in a fresh process, so the budget is whole when it starts.

async function scenario(name: string): Promise<Record<string, unknown>> {
  const r = await startFixture('budget.cjs', [name], { timeout: 30000 }).done
  if (r.code !== 0) throw new Error(`child exited ${r.code ?? r.signal}: ${r.stderr}`)
  return JSON.parse(r.stdout) as Record<string, unknown>
}

test('past the budget, receives wait for the next turn and still come in call order', async (t) => {
  const out = await scenario('in-order')
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
  const out = await scenario('waits-on-socket')
  t.deepEqual(out, { waiting: 2, got: '123' })
})

test('abort reaches a deferred operation, which then consumes nothing', async (t) => {
  const out = await scenario('abort')
  t.deepEqual(out, { before: 3, after: 2, got: ['p', 'AbortError', 'q'] })
})

test('close rejects deferred operations with ERR_SOCKET_CLOSED', async (t) => {
  const out = await scenario('close')
  t.deepEqual(out, { before: 2, codes: ['ERR_SOCKET_CLOSED', 'ERR_SOCKET_CLOSED'], pending: 0 })
})

test('a deferred receive whose fd number was closed and reused fails with EBADF and reads nothing', async (t) => {
  const out = await scenario('fd-reused')
  t.deepEqual(out, { reused: true, stale: 'EBADF', fresh: 'new' })
})

test('a deferred send carries its fds even when the caller closes them right after the call', async (t) => {
  const out = await scenario('send-fds-closed')
  t.deepEqual(out, { waiting: 1, dots: 32, data: 'f', same: true })
})
