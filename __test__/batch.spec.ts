import test from 'ava'
import { fstatSync } from 'node:fs'
import {
  close,
  closeFds,
  MAX_BATCH,
  recvfdsMany,
  sendfds,
  sendfdsMany,
  socketpair,
  type RecvFdsResult,
} from '../index.js'
import { fdCount, startFixture, startNode, turnEnded } from './helpers'

// recvfdsMany / sendfdsMany / closeFds: many messages per native call, every fd accounted for.

/** Receives until `n` messages have come (or the peer closed). */
async function receiveAll(sock: number, n: number, maxBytes: number, maxFds: number): Promise<RecvFdsResult[]> {
  const all: RecvFdsResult[] = []
  while (all.length < n) {
    const got = await recvfdsMany(sock, MAX_BATCH, maxBytes, maxFds)
    all.push(...got)
    if (got[got.length - 1].data.length === 0) break
  }
  return all
}

test.serial('1,000 messages from a child process, each with its own fds, arrive in order and whole', async (t) => {
  const before = fdCount()
  const [ours, theirs] = socketpair()
  const child = startNode(
    `
    const u = require(process.env.NET_UNIX)
    const [x] = u.socketpair()
    const msgs = Array.from({ length: 1000 }, (_, i) => ({ data: Buffer.from([i & 255, i >> 8]), fds: Array(i % 4).fill(x) }))
    u.sendfdsMany(3, msgs).then((n) => console.log(n))
  `,
    { stdio: ['ignore', 'pipe', 'pipe', theirs] },
  )
  close(theirs)
  const got = await receiveAll(ours, 1000, 2, 3)
  t.is((await child.done).stdout.trim(), '2000', 'the child sent every byte')
  t.is(got.length, 1000)
  got.forEach((m, i) => {
    if (m.data.readUInt16LE(0) !== i || m.fds.length !== i % 4 || m.truncated) {
      t.fail(`message ${i}: ${m.data.toString('hex')} with ${m.fds.length} fds`)
    }
  })
  const fds = got.flatMap((m) => m.fds)
  t.is(fds.length, 1500)
  t.true(
    fds.every((fd) => fstatSync(fd).isSocket()),
    'each received fd is the socket the child sent',
  )
  closeFds(fds)
  close(ours)
  await turnEnded()
  t.is(fdCount(), before)
})

test('Python send_fds → recvfdsMany, and sendfdsMany → Python recv_fds', async (t) => {
  const [ours, theirs] = socketpair()
  const child = startFixture('batch-python-peer.py', [], { stdio: ['ignore', 'pipe', 'pipe', theirs] })
  close(theirs)
  const got = await receiveAll(ours, 200, 1, 4)
  t.deepEqual(
    got.map((m) => [m.data[0], m.fds.length]),
    Array.from({ length: 200 }, (_, i) => [i, i % 3]),
  )
  closeFds(got.flatMap((m) => m.fds))
  const [x, xPeer] = socketpair()
  const msgs = Array.from({ length: 100 }, (_, i) => ({ data: Buffer.from([i]), fds: Array(i % 5).fill(x) }))
  t.is(await sendfdsMany(ours, msgs), 100)
  const r = await child.done
  t.is(r.stdout.trim(), 'True', r.stderr)
  ;[ours, x, xPeer].forEach(close)
})

test.serial('more fds than maxFds: the first ones arrive, truncated is set, the rest are closed', async (t) => {
  const [a, b] = socketpair()
  const [x, xPeer] = socketpair()
  const before = fdCount()
  await sendfds(a, Buffer.from('t'), [x, x, x])
  const [m] = await recvfdsMany(b, 4, 1, 1)
  t.is(m.fds.length, 1)
  t.true(m.truncated)
  closeFds(m.fds)
  t.is(fdCount(), before)
  ;[a, b, x, xPeer].forEach(close)
})

test("messages larger than the socket buffer: every byte arrives in order, each message's fds at its first byte", async (t) => {
  const [ours, theirs] = socketpair()
  const [x, xPeer] = socketpair()
  const size = 100_000
  // The reader (fixtures/batch-marks.py) records which message's first byte each read that
  // brought fds covered (the kernel hands fds to the read that reaches the byte they were sent
  // with).
  const child = startFixture('batch-marks.py', [String(size)], { stdio: ['ignore', 'pipe', 'pipe', theirs] })
  close(theirs)
  const msgs = Array.from({ length: 20 }, (_, i) => ({ data: Buffer.alloc(size, i), fds: i % 2 ? [x] : [x, x] }))
  t.is(await sendfdsMany(ours, msgs), 20 * size)
  close(ours)
  const r = await child.done
  const expected = `${20 * size} [${msgs.map((m, i) => `([${i}], ${m.fds.length})`).join(', ')}] True`
  t.is(r.stdout.trim(), expected, r.stderr)
  ;[x, xPeer].forEach(close)
})

test.serial('an abort while a batch waits for room rejects with what was sent, and leaks no dup', async (t) => {
  const [a, b] = socketpair()
  const [x, xPeer] = socketpair()
  const before = fdCount()
  const ac = new AbortController()
  const msgs = Array.from({ length: 8 }, () => ({ data: Buffer.alloc(200_000), fds: [x] }))
  const p = sendfdsMany(a, msgs, { signal: ac.signal })
  setImmediate(() => ac.abort(new Error('enough')))
  const e = (await p.then(
    () => null,
    (err: unknown) => err,
  )) as (Error & { code: string; sent: number; cause: Error }) | null
  t.truthy(e, 'nobody reads: the batch cannot finish')
  t.is(e?.code, 'ABORT_ERR')
  t.is(e?.cause.message, 'enough')
  t.true(typeof e?.sent === 'number' && e.sent < 8)
  await turnEnded()
  t.is(fdCount(), before)
  ;[a, b, x, xPeer].forEach(close)
})

test('close() while recvfdsMany waits rejects it with ERR_SOCKET_CLOSED', async (t) => {
  const [a, b] = socketpair()
  const p = recvfdsMany(b, 8, 1, 1)
  close(b)
  await t.throwsAsync(p, { code: 'ERR_SOCKET_CLOSED' })
  close(a)
})

test("bad input: clear errors before anything is sent, and the kernel's EBADF with sent = 0", async (t) => {
  const [a, b] = socketpair()
  await t.throwsAsync(recvfdsMany(b, 0, 1, 1), { code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(recvfdsMany(b, MAX_BATCH + 1, 1, 1), { code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(recvfdsMany(b, 1, 0, 1), { code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(recvfdsMany(b, 1, 1, 254), { code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(sendfdsMany(a, 'x' as never), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(sendfdsMany(a, [null as never]), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(sendfdsMany(a, [{ data: Buffer.alloc(0), fds: [a] }]), { code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(sendfdsMany(a, [{ data: Buffer.from('x'), fds: [1.5] }]), { code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(sendfdsMany(a, [{ data: Buffer.from('x'), fds: Array(254).fill(a) }]), {
    code: 'ERR_OUT_OF_RANGE',
  })
  const closed = socketpair()
  closed.forEach(close)
  const e = await t.throwsAsync(sendfdsMany(a, [{ data: Buffer.from('x'), fds: [closed[0]] }]), { code: 'EBADF' })
  t.is((e as Error & { sent: number; syscall: string }).sent, 0)
  t.is((e as Error & { syscall: string }).syscall, 'sendmmsg')
  t.throws(() => closeFds([closed[0]]), { code: 'EBADF' })
  t.throws(() => closeFds('1' as never), { code: 'ERR_INVALID_ARG_TYPE' })
  ;[a, b].forEach(close)
})

test.serial('closeFds closes every fd even when one of them fails', (t) => {
  const before = fdCount()
  const [x, y] = socketpair()
  const pair = socketpair()
  pair.forEach(close)
  const gone = pair[0]
  t.throws(() => closeFds([x, gone, y]), { code: 'EBADF' })
  t.is(fdCount(), before)
})
