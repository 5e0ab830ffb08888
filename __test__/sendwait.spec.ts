// Sends that cannot complete at once: the socket buffer is full, so the Promise forms wait for
// write readiness, and can be aborted or closed while they wait.
import test from 'ava'
import { createHash } from 'node:crypto'
import {
  AbortError,
  addvector,
  allocfiles,
  close,
  finish,
  newmsg,
  pending,
  recvfiles,
  recvmsgSync,
  sendfds,
  sendmsg,
  sendmsgSync,
  sockflag,
  socketpair,
} from '../index.js'
import { fdCount, fillSocket, inode, startPython, within, msgOf } from './helpers'

/** Everything a non-blocking `fd` holds right now: its bytes and the fds that came with them. */
function drain(fd: number): { bytes: Buffer; fds: number[] } {
  const chunks: Buffer[] = []
  const fds: number[] = []
  for (;;) {
    const buf = Buffer.alloc(65536)
    const m = newmsg()
    addvector(m, buf)
    allocfiles(m, 4)
    try {
      const n = recvmsgSync(fd, m)
      if (n === 0) break
      chunks.push(buf.subarray(0, n))
      fds.push(...recvfiles(m, 4))
      finish(m)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break
      throw e
    }
  }
  return { bytes: Buffer.concat(chunks), fds }
}

test.serial('sendmsgSync on a full non-blocking socket fails with EAGAIN', (t) => {
  const [a, b] = socketpair(sockflag.NONBLOCK)
  t.true(fillSocket(a) > 0)
  t.like(
    t.throws(() => sendmsgSync(a, msgOf(Buffer.from('x')))),
    { code: 'EAGAIN', errno: -11, syscall: 'sendmsg' } as object,
  )
  ;[a, b].forEach(close)
})

test.serial('a Promise send that finds the buffer full waits for the reader, then completes', async (t) => {
  const before = fdCount()
  const [a, b] = socketpair(sockflag.NONBLOCK)
  const filled = fillSocket(a)
  const send = sendmsg(a, msgOf(Buffer.from('after')))
  t.is(pending(a), 1, 'the send waits: the buffer is full')
  const first = drain(b) // room again: the send may go now, on write readiness
  t.is(first.bytes.length, filled)
  t.is(await within(send, 10000, 'the waiting send, after the reader made room'), 5)
  t.is(pending(a), 0)
  t.is(drain(b).bytes.toString(), 'after')
  ;[a, b].forEach(close)
  t.is(fdCount(), before)
})

test.serial(
  '8 MiB through the Promise sendmsg to a Python reader: partial sends, waits, every byte in order',
  async (t) => {
    const [a, b] = socketpair()
    const reader = startPython(
      'import socket, hashlib\ns = socket.socket(fileno=3)\nh = hashlib.sha256()\nn = 0\nwhile True:\n    d = s.recv(65536)\n    if not d: break\n    h.update(d)\n    n += len(d)\nprint(n, h.hexdigest())',
      { stdio: ['ignore', 'pipe', 'pipe', b] },
    )
    close(b)
    const data = Buffer.alloc(8 << 20)
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i)
    let off = 0
    let partial = 0
    let waited = 0
    const sending = (async () => {
      while (off < data.length) {
        const chunk = data.subarray(off, off + (256 << 10))
        const p = sendmsg(a, msgOf(chunk))
        if (pending(a) > 0) waited++
        const n = await p
        if (n < chunk.length) partial++
        off += n
      }
      close(a)
    })()
    await within(sending, 60000, 'sending 8 MiB')
    const r = await within(reader.done, 60000, 'the Python reader')
    t.is(r.code, 0, r.stderr)
    t.is(r.stdout.trim(), `${data.length} ${createHash('sha256').update(data).digest('hex')}`)
    t.true(partial > 0, 'a 256 KiB send into a smaller socket buffer is partial')
    t.log({ partial, waited })
  },
)

test.serial('a partial send carries its fds with the first byte, and only once', async (t) => {
  const before = fdCount()
  const [a, b] = socketpair(sockflag.NONBLOCK)
  const [x, y] = socketpair()
  const big = Buffer.alloc(1 << 20, 'b')
  const n = await sendmsg(a, msgOf(big, x))
  t.true(n > 0 && n < big.length, `sent ${n} of ${big.length}: partial`)
  const m = newmsg()
  const buf = Buffer.alloc(1000)
  addvector(m, buf)
  allocfiles(m, 2)
  t.is(recvmsgSync(b, m), 1000)
  const firstFds = recvfiles(m, 2)
  t.is(firstFds.length, 1, 'the fd comes with the first bytes')
  t.is(inode(firstFds[0]), inode(x))
  finish(m)
  const rest = drain(b)
  t.is(1000 + rest.bytes.length, n)
  t.deepEqual(rest.fds, [], 'no fd came with any later byte')
  ;[...firstFds, a, b, x, y].forEach(close)
  t.is(fdCount(), before)
})

test.serial('aborting a waiting send sends none of it and closes the fds it held', async (t) => {
  const before = fdCount()
  const [a, b] = socketpair(sockflag.NONBLOCK)
  const [x, y] = socketpair()
  const filled = fillSocket(a)
  const ac = new AbortController()
  const send = sendmsg(a, msgOf(Buffer.from('never'), x, y), { signal: ac.signal })
  t.is(pending(a), 1)
  ac.abort()
  await t.throwsAsync(within(send, 10000, 'the aborted send'), { instanceOf: AbortError })
  t.is(pending(a), 0)
  const got = drain(b)
  t.is(got.bytes.length, filled, 'nothing of the aborted send arrived')
  t.deepEqual(got.fds, [])
  // The socket still works: a later Promise send goes through.
  t.is(await within(sendfds(a, Buffer.from('ok'), [x]), 10000, 'a send after the abort'), 2)
  const after = drain(b)
  t.is(after.bytes.toString(), 'ok')
  ;[...after.fds, a, b, x, y].forEach(close)
  t.is(fdCount(), before)
})

test.serial('closing a socket with a waiting send rejects it with ERR_SOCKET_CLOSED and leaks nothing', async (t) => {
  const before = fdCount()
  const [a, b] = socketpair(sockflag.NONBLOCK)
  const [x, y] = socketpair()
  fillSocket(a)
  const sends = [sendmsg(a, msgOf(Buffer.from('1'), x)), sendfds(a, Buffer.from('2'), [y])]
  t.is(pending(a), 2)
  close(a)
  const results = await within(Promise.allSettled(sends), 10000, 'the sends pending on a closed socket')
  t.deepEqual(
    results.map((r) => r.status === 'rejected' && (r.reason as NodeJS.ErrnoException).code),
    ['ERR_SOCKET_CLOSED', 'ERR_SOCKET_CLOSED'],
  )
  ;[b, x, y].forEach(close)
  t.is(fdCount(), before)
})
