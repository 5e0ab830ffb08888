import test from 'ava'
import { startFixture } from './helpers'

// Each scenario runs in a child (fixtures/misuse.cjs): without the private dup and the identity
// check, these abort the process (exit 134) or read another socket's data. Exit code 0 and the
// printed facts prove neither.

async function scenario(name: string): Promise<Record<string, unknown>> {
  const r = await startFixture('misuse.cjs', [name], { timeout: 30000 }).done
  if (r.code !== 0) throw new Error(`child exited ${r.code ?? r.signal}: ${r.stderr}`)
  return JSON.parse(r.stdout) as Record<string, unknown>
}

test('fs.closeSync on an fd with a pending recv, in the same tick, does not crash', async (t) => {
  const out = await scenario('close-pending-recv')
  t.deepEqual(out, { r: 'AbortError' })
})

test('an fd number closed behind our back and reused at once gets no cross-talk', async (t) => {
  const out = await scenario('fd-reused')
  t.true(out.reused)
  t.is(out.fresh, 'new')
  t.not(out.stale, 'stale got new')
})

test('an fd whose operations settled works with new net.Socket({ fd })', async (t) => {
  const out = await scenario('settled-to-net-socket')
  t.deepEqual(out, { viaNet: 'two', pending: 0 })
})

test('a received fd and a net-unix listener work with net.Socket and server.listen({ fd })', async (t) => {
  const out = await scenario('received-fd-to-net')
  t.deepEqual(out, { text: 'hello from net' })
})

test('a pending operation keeps the process alive, and nothing does once it settled', async (t) => {
  const out = await scenario('keeps-alive')
  t.deepEqual(out, { settled: true })
})

test('ending a stale operation never removes the epoll registration of a net.Socket that reused the fd number', async (t) => {
  const out = await scenario('stale-end-keeps-net-watcher')
  t.deepEqual(out, { reused: true, viaNet: 'still here', stale: 'AbortError' })
})
