import test from 'ava'
import { once } from 'node:events'
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { Readable, Writable, pipeline } from 'node:stream'
import { promisify } from 'node:util'
import {
  UnixServer,
  UnixSocket,
  accept,
  backlog,
  close,
  closeFds,
  createConnection,
  createServer,
  listen,
  recvfds,
  sendmsgSync,
  seqpacket,
  socketpair,
} from '../index.js'
import { fdCount, fdFlags, inode, msgOf, O_CLOEXEC, runFixture, streamPair, tmpPath, waitUntil } from './helpers'

/** A file holding `text`, opened for reading. */
function fileWith(text: string): number {
  const p = tmpPath('f.txt')
  writeFileSync(p, text)
  return openSync(p, 'r')
}

const pair = (options: { allowHalfOpen?: boolean } = {}): [UnixSocket, UnixSocket] => streamPair(options)

/** Resolves once both sockets have emitted 'close'. */
async function closed(...sockets: UnixSocket[]): Promise<void> {
  await Promise.all(sockets.map((s) => (s.closed ? undefined : once(s, 'close'))))
}

test.serial(
  "writeWithFds: 'fds' comes before the bytes, the caller keeps its fd, received fds are close-on-exec",
  async (t) => {
    const before = fdCount()
    const [a, b] = pair()
    const file = fileWith('through the fd')
    const events: string[] = []
    let got: number[] = []
    b.on('fds', (fds: number[]) => {
      events.push(`fds:${fds.length}`)
      got = fds
    })
    b.on('data', (d: Buffer) => events.push(`data:${d.toString()}`))
    t.true(a.writeWithFds('x', [file]))
    closeSync(file) // the stream sent a dup of its own
    a.end()
    await once(b, 'end')
    t.deepEqual(events, ['fds:1', 'data:x'])
    t.is(readFileSync(got[0], 'utf8'), 'through the fd')
    t.is(fdFlags(got[0]) & O_CLOEXEC, O_CLOEXEC)
    closeFds(got)
    await closed(a, b)
    t.is(fdCount(), before)
  },
)

test.serial("a paused-mode reader ('readable' + read(n)) sees 'fds' before the bytes", async (t) => {
  const before = fdCount()
  const [a, b] = pair()
  const file = fileWith('paused')
  const seen: string[] = []
  b.on('fds', (fds: number[]) => {
    seen.push('fds')
    closeFds(fds)
  })
  b.on('readable', () => {
    let chunk: Buffer | null
    while ((chunk = b.read(4)) !== null) seen.push(chunk.toString())
  })
  a.write('head')
  a.writeWithFds('with', [file])
  closeSync(file)
  a.end()
  await once(b, 'end')
  const fdsAt = seen.indexOf('fds')
  t.true(fdsAt >= 0 && fdsAt < seen.indexOf('with'), seen.join(','))
  await closed(a, b)
  t.is(fdCount(), before)
})

test.serial('fds nobody listens for are closed, not leaked', async (t) => {
  const before = fdCount()
  const [a, b] = pair()
  const file = fileWith('unclaimed')
  for (let i = 0; i < 20; i++) a.writeWithFds('m', [file, file, file])
  closeSync(file)
  a.end()
  b.resume()
  await once(b, 'end')
  await closed(a, b)
  t.is(fdCount(), before)
})

test.serial(
  'batching (cork/writev) never moves fds onto another chunk, and partial sends keep them on the first byte',
  async (t) => {
    const before = fdCount()
    const [fdA, fdB] = socketpair()
    const a = new UnixSocket({ fd: fdA })
    const files = [fileWith('one'), fileWith('two'), fileWith('three')]
    const big = Buffer.alloc(3 << 20, 'b') // far more than the socket buffer: sent in parts
    const chunks: [Buffer, number[]][] = [
      [Buffer.from('plain-1'), []],
      [Buffer.from('F1'), [files[0]]],
      [Buffer.from('plain-2'), []],
      [big, [files[1]]],
      [Buffer.from('F3'), [files[2]]],
      [Buffer.from('plain-3'), []],
    ]
    a.cork()
    for (const [chunk, fds] of chunks) fds.length ? a.writeWithFds(chunk, fds) : a.write(chunk)
    a.uncork()
    a.end()
    // Raw receiver: where in the byte stream did each set of fds arrive?
    const arrivals: { from: number; to: number; text: string }[] = []
    let offset = 0
    for (;;) {
      const r = await recvfds(fdB, 1 << 16, 253)
      if (r.data.length === 0) break
      for (const fd of r.fds)
        arrivals.push({ from: offset, to: offset + r.data.length, text: readFileSync(fd, 'utf8') })
      closeFds(r.fds)
      offset += r.data.length
    }
    let at = 0
    const starts = chunks.map(([chunk]) => {
      const s = at
      at += chunk.length
      return s
    })
    t.is(offset, at)
    t.deepEqual(
      arrivals.map((x) => x.text),
      ['one', 'two', 'three'],
    )
    // Each set arrived with a read that holds its chunk's first byte (the kernel may join bytes
    // written before it into that read, never bytes of a later fd-carrying chunk).
    for (const [i, chunkIndex] of [1, 3, 4].entries()) {
      const { from, to } = arrivals[i]
      t.true(
        from <= starts[chunkIndex] && starts[chunkIndex] < to,
        `fds ${i} at [${from},${to}) for byte ${starts[chunkIndex]}`,
      )
    }
    files.forEach(closeSync)
    close(fdB)
    await closed(a)
    t.is(fdCount(), before)
  },
)

test.serial(
  'fd-carrying messages read in batches (recvmmsg) keep their order and arrive with their own bytes',
  async (t) => {
    const before = fdCount()
    const [a, b] = pair()
    // Some messages longer than a batch slot, some with two fds; all written before the reader's
    // first read, so every read after it takes many messages at once.
    const files = Array.from({ length: 150 }, (_, i) => fileWith(`file ${i}`))
    const messages = files.map((_, i) => Buffer.from(`<${i}:${'x'.repeat(i % 7 === 0 ? 2000 : i % 13)}>`))
    messages.forEach((m, i) => a.writeWithFds(m, i % 5 === 0 ? [files[i], files[i]] : [files[i]]))
    const indexOf = new Map(files.map((fd, i) => [inode(fd), i]))
    files.forEach(closeSync)
    a.end()
    const arrivals: { at: number; files: (number | undefined)[] }[] = []
    let offset = 0
    // Where the fds belong: the bytes read so far plus those pushed but not yet read (a batch
    // pushes several reads before 'data' runs).
    b.on('fds', (fds: number[]) => {
      arrivals.push({ at: offset + b.readableLength, files: fds.map((fd) => indexOf.get(inode(fd))) })
      closeFds(fds)
    })
    const received: Buffer[] = []
    b.on('data', (d: Buffer) => {
      received.push(d)
      offset += d.length
    })
    await once(b, 'end')
    t.deepEqual(Buffer.concat(received), Buffer.concat(messages))
    t.is(arrivals.length, messages.length)
    let start = 0
    for (let i = 0; i < messages.length; i++) {
      t.deepEqual(arrivals[i].files, i % 5 === 0 ? [i, i] : [i])
      // Never after the message's first byte, never before the previous message's.
      t.true(arrivals[i].at <= start && (i === 0 || arrivals[i].at > start - messages[i - 1].length), `message ${i}`)
      start += messages[i].length
    }
    await closed(a, b)
    t.is(fdCount(), before)
  },
)

test.serial(
  'a run of writeWithFds chunks goes out in batches (sendmmsg); one cut short mid-batch goes on in order',
  async (t) => {
    const before = fdCount()
    const [fdA, fdB] = socketpair()
    const a = new UnixSocket({ fd: fdA })
    const files = Array.from({ length: 24 }, (_, i) => fileWith(`chunk ${i}`))
    // 100 KiB each, several skbs: the socket buffer fills inside a message of the batch.
    const chunks = files.map((_, i) => Buffer.alloc(100 * 1024, i))
    a.cork()
    chunks.forEach((c, i) => a.writeWithFds(c, [files[i]]))
    a.uncork()
    files.forEach(closeSync)
    a.end()
    const arrivals: { from: number; to: number; text: string }[] = []
    let offset = 0
    const received: Buffer[] = []
    for (;;) {
      const r = await recvfds(fdB, 1 << 16, 253)
      if (r.data.length === 0) break
      for (const fd of r.fds)
        arrivals.push({ from: offset, to: offset + r.data.length, text: readFileSync(fd, 'utf8') })
      closeFds(r.fds)
      received.push(Buffer.from(r.data))
      offset += r.data.length
    }
    t.true(Buffer.concat(received).equals(Buffer.concat(chunks)))
    t.deepEqual(
      arrivals.map((x) => x.text),
      files.map((_, i) => `chunk ${i}`),
    )
    arrivals.forEach(({ from, to }, i) => {
      const first = i * 100 * 1024
      t.true(from <= first && first < to, `fds of chunk ${i} at [${from},${to})`)
    })
    close(fdB)
    await closed(a)
    t.is(fdCount(), before)
  },
)

test.serial(
  'over seqpacket, fd-carrying records longer than a batch slot arrive whole (no batched reads)',
  async (t) => {
    const before = fdCount()
    const [fdA, fdB] = socketpair(seqpacket)
    const [a, b] = [new UnixSocket({ fd: fdA }), new UnixSocket({ fd: fdB })]
    const file = fileWith('record')
    const records = Array.from({ length: 20 }, (_, i) => Buffer.alloc(3000, i))
    records.forEach((r) => a.writeWithFds(r, [file]))
    closeSync(file)
    a.end()
    let fdsSeen = 0
    b.on('fds', (fds: number[]) => {
      fdsSeen += fds.length
      closeFds(fds)
    })
    const received: Buffer[] = []
    b.on('data', (d: Buffer) => received.push(d))
    await once(b, 'end')
    t.true(Buffer.concat(received).equals(Buffer.concat(records)))
    t.is(fdsSeen, records.length)
    await closed(a, b)
    t.is(fdCount(), before)
  },
)

test.serial('destroy() during a batched write closes every dup, sent or not', async (t) => {
  const before = fdCount()
  const [fdA, fdB] = socketpair()
  const a = new UnixSocket({ fd: fdA })
  const file = fileWith('never read')
  a.cork()
  for (let i = 0; i < 200; i++) a.writeWithFds(Buffer.alloc(8192, 1), [file, file])
  a.uncork() // sends what fits, then the rest of the batch waits for room that never comes
  closeSync(file)
  t.true(a.writableLength > 0)
  a.destroy()
  close(fdB) // drops the fds still queued in the kernel
  await closed(a)
  t.is(fdCount(), before)
})

test.serial('after a short read the next one waits for readiness, and bytes already there still come', async (t) => {
  const [fdA, fdB] = socketpair()
  const b = new UnixSocket({ fd: fdB })
  const got: string[] = []
  const done = new Promise<void>((resolve) => {
    b.on('data', (d: Buffer) => {
      got.push(d.toString())
      // Sent before the read loop asks again: that read waits without trying first, and the
      // (level-triggered) readiness must still report these bytes.
      if (got.length < 3) sendmsgSync(fdA, msgOf(`m${got.length}`))
      else resolve()
    })
  })
  sendmsgSync(fdA, msgOf('m0'))
  await done
  t.deepEqual(got, ['m0', 'm1', 'm2'])
  close(fdA)
  await closed(b)
})

test.serial("backpressure: write() returns false past the high-water mark and 'drain' follows", async (t) => {
  const [a, b] = pair()
  const chunk = Buffer.alloc(64 * 1024, 1)
  let writes = 0
  while (a.write(chunk)) writes++
  t.true(writes < 1000)
  let received = 0
  b.on('data', (d: Buffer) => (received += d.length))
  await once(a, 'drain')
  a.end()
  await once(b, 'end')
  t.is(received, (writes + 1) * chunk.length)
  await closed(a, b)
})

test.serial(
  "writeWithFds returns false once the kernel's buffer is full, one message queued; 'drain' follows",
  async (t) => {
    const before = fdCount()
    const [fdA, fdB] = socketpair()
    const a = new UnixSocket({ fd: fdA })
    const file = fileWith('full')
    await new Promise((resolve) => setImmediate(resolve)) // a's read has started
    const open = fdCount()
    let sent = 0
    while (a.writeWithFds(Buffer.from([sent & 0xff]), [file])) sent++
    t.true(sent > 0)
    t.is(a.writableLength, 1, 'only the message the kernel refused is queued')
    t.true(a.writableNeedDrain)
    // The stream's dup of the queued message's fd, and the core's of it while the send waits.
    t.is(fdCount(), open + 2, 'dups for the queued message alone')
    closeSync(file)
    const b = new UnixSocket({ fd: fdB })
    let fds = 0
    let bytes = 0
    b.on('fds', (f: number[]) => {
      fds += f.length
      closeFds(f)
    })
    b.on('data', (d: Buffer) => (bytes += d.length))
    await once(a, 'drain')
    a.end()
    await once(b, 'end')
    t.is(bytes, sent + 1)
    t.is(fds, sent + 1)
    await closed(a, b)
    t.is(fdCount(), before)
  },
)

test.serial('end() shuts the sending side down; with allowHalfOpen the peer can still answer', async (t) => {
  const [a, b] = pair({ allowHalfOpen: true })
  a.end('question')
  let asked = ''
  b.on('data', (d: Buffer) => (asked += d))
  await once(b, 'end')
  t.is(asked, 'question')
  b.end('answer')
  let answer = ''
  a.on('data', (d: Buffer) => (answer += d))
  await once(a, 'end')
  t.is(answer, 'answer')
  await closed(a, b)
})

test.serial("without allowHalfOpen a socket ends its side on 'end', and 'close' comes once", async (t) => {
  const [a, b] = pair()
  let closes = 0
  b.on('close', () => closes++)
  b.resume()
  a.resume()
  a.end()
  await closed(a, b)
  t.is(closes, 1)
  t.is(b.fd, -1)
  b.destroy()
  await new Promise((r) => setImmediate(r))
  t.is(closes, 1)
})

test.serial('destroy() closes the fd exactly once and every dup of unsent writeWithFds fds', async (t) => {
  const before = fdCount()
  const [a, b] = pair()
  const file = fileWith('never sent')
  b.pause() // nobody reads: the socket buffer fills and writes queue up
  const chunk = Buffer.alloc(64 * 1024, 2)
  for (let i = 0; i < 64; i++) a.writeWithFds(chunk, [file, file])
  closeSync(file)
  t.true(a.writableLength > 0)
  a.destroy()
  b.destroy()
  await closed(a, b)
  t.is(fdCount(), before)
})

test.serial("writing to a peer that closed is an 'error' with code EPIPE", async (t) => {
  const [a, b] = pair()
  b.destroy()
  await closed(b)
  a.write('anyone?')
  const [err] = (await once(a, 'error')) as [NodeJS.ErrnoException]
  t.is(err.code, 'EPIPE')
  t.is(err.syscall, 'sendmsg')
  await closed(a)
})

test.serial("a peer that closes with unread data makes the read an 'error' with code ECONNRESET", async (t) => {
  const [fdA, fdB] = socketpair()
  const a = new UnixSocket({ fd: fdA })
  a.write('unread')
  // Wait until the bytes are in the peer's queue, then close it unread.
  await new Promise<void>((resolve) => a.write('', () => resolve()))
  a.resume()
  close(fdB)
  const [err] = (await once(a, 'error')) as [NodeJS.ErrnoException]
  t.is(err.code, 'ECONNRESET')
  await closed(a)
})

test.serial('bad input to writeWithFds: each a clear error, nothing leaked', async (t) => {
  const before = fdCount()
  const [a, b] = pair()
  const file = fileWith('x')
  const open = fileWith('open')
  closeSync(file) // its number stays free: nothing opens a file until the checks are done
  const badf = t.throws(() => a.writeWithFds('x', [file]), { code: 'EBADF' }) as NodeJS.ErrnoException
  t.is(badf.syscall, 'dup')
  // A closed low number would be taken by the dup of `open` itself: use one nothing holds.
  t.throws(() => a.writeWithFds('x', [open, 999_999]), { code: 'EBADF' }) // the dup of `open` is undone
  t.throws(() => a.writeWithFds('x', [1.5]), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => a.writeWithFds('x', ['3' as unknown as number]), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => a.writeWithFds('x', 3 as unknown as number[]), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => a.writeWithFds('x', new Array(254).fill(open)), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => a.writeWithFds('', [open]), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => a.writeWithFds(42 as unknown as string, [open]), { code: 'ERR_INVALID_ARG_TYPE' })
  t.is(a.writableLength, 0)
  a.end()
  const afterEnd = new Promise<Error>((resolve) => a.writeWithFds('late', [open], (err) => resolve(err as Error)))
  const [endErr] = (await once(a, 'error')) as [NodeJS.ErrnoException]
  t.is(endErr.code, 'ERR_STREAM_WRITE_AFTER_END')
  t.is(((await afterEnd) as NodeJS.ErrnoException).code, 'ERR_STREAM_WRITE_AFTER_END')
  b.destroy()
  await closed(a, b)
  const afterDestroy = await new Promise<Error>((resolve) =>
    b.writeWithFds('late', [open], (err) => resolve(err as Error)),
  )
  t.is((afterDestroy as NodeJS.ErrnoException).code, 'ERR_STREAM_DESTROYED')
  closeSync(open)
  t.is(fdCount(), before)
})

test.serial(
  "createConnection: writes before 'connect' are buffered, fds included; 'connect' then 'ready'",
  async (t) => {
    const before = fdCount()
    const path = tmpPath()
    const server = createServer()
    server.listen(path)
    await once(server, 'listening')
    t.is(server.address(), path)
    const file = fileWith('early')
    const client = createConnection(path)
    t.true(client.connecting)
    t.is(client.remoteAddress, path)
    client.writeWithFds('E', [file])
    client.end('nd')
    closeSync(file)
    const events: string[] = []
    client.on('connect', () => events.push('connect'))
    client.on('ready', () => events.push('ready'))
    const [conn] = (await once(server, 'connection')) as [UnixSocket]
    t.is(conn.peercred().pid, process.pid)
    let text = ''
    let fdText = ''
    conn.on('fds', (fds: number[]) => {
      fdText = readFileSync(fds[0], 'utf8')
      closeFds(fds)
    })
    conn.on('data', (d: Buffer) => (text += d))
    await once(conn, 'end')
    t.is(text, 'End')
    t.is(fdText, 'early')
    t.deepEqual(events, ['connect', 'ready'])
    t.is(conn.setNoDelay(true), conn)
    t.is(conn.setKeepAlive(true, 10), conn)
    client.resume()
    await closed(client, conn)
    await new Promise<void>((resolve) => server.close(() => resolve()))
    t.false(existsSync(path))
    t.is(fdCount(), before)
  },
)

test.serial('createConnection waits through a full backlog instead of failing', async (t) => {
  const path = tmpPath()
  const l = listen(path, backlog(0))
  const clients = [0, 1, 2, 3].map(() => createConnection(path))
  const connected = clients.map((c) => once(c, 'connect'))
  const accepted: number[] = []
  for (let i = 0; i < clients.length; i++) accepted.push(await accept(l))
  await Promise.all(connected)
  t.is(accepted.length, 4)
  clients.forEach((c) => c.destroy())
  accepted.forEach(close)
  close(l)
})

test.serial("createConnection to nothing is an 'error' (ENOENT), an invalid address too", async (t) => {
  const before = fdCount()
  const c = createConnection(tmpPath('none.sock'))
  const [err] = (await once(c, 'error')) as [NodeJS.ErrnoException]
  t.is(err.code, 'ENOENT')
  t.is(err.syscall, 'connect')
  const bad = createConnection('')
  const [inv] = (await once(bad, 'error')) as [NodeJS.ErrnoException]
  t.is(inv.code, 'ERR_INVALID_UNIX_PATH')
  await closed(c, bad)
  t.is(fdCount(), before)
})

test.serial('UnixServer: EADDRINUSE as an error event, listen({ fd }), close() of a server not running', async (t) => {
  const path = tmpPath()
  const first = createServer().listen({ path })
  await once(first, 'listening')
  const second = createServer().listen(path)
  const [err] = (await once(second, 'error')) as [NodeJS.ErrnoException]
  t.is(err.code, 'EADDRINUSE')
  const notRunning = await new Promise<Error | undefined>((resolve) => second.close(resolve))
  t.is((notRunning as NodeJS.ErrnoException).code, 'ERR_SERVER_NOT_RUNNING')
  await new Promise((resolve) => first.close(resolve))

  const name = `\0net-unix-stream-${process.pid}`
  const byFd: UnixServer = createServer((s) => s.end('hi'))
  byFd.listen({ fd: listen(name) })
  await once(byFd, 'listening')
  t.true(byFd.listening)
  const c = createConnection(name)
  let text = ''
  c.on('data', (d: Buffer) => (text += d))
  await once(c, 'end')
  t.is(text, 'hi')
  await closed(c)
  await new Promise((resolve) => byFd.close(resolve))
  t.false(byFd.listening)
})

test.serial('async iteration and stream.pipeline work over a pair', async (t) => {
  const [a, b] = pair()
  const parts = ['one ', 'two ', 'three']
  const sent = promisify(pipeline)(Readable.from(parts.map((p) => Buffer.from(p))), a)
  let text = ''
  for await (const chunk of b) text += chunk
  await sent
  t.is(text, parts.join(''))
  const [c, d] = pair()
  const sink: Buffer[] = []
  const copied = promisify(pipeline)(
    d,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        sink.push(chunk)
        cb()
      },
    }),
  )
  c.end('piped')
  await copied
  t.is(Buffer.concat(sink).toString(), 'piped')
  await closed(a, b, c, d)
})

test('an unref()ed socket or server lets the process exit; ref() holds it again', async (t) => {
  const r = await runFixture('stream-unref.cjs')
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout, 'got ping\nexit\n')
})

test.serial(
  'writeWithFds on an idle stream: sent inside the call, a long chunk cut short goes on without its fds',
  async (t) => {
    const before = fdCount()
    const [fdA, fdB] = socketpair()
    const a = new UnixSocket({ fd: fdA })
    const file = fileWith('idle')
    const ino = inode(file)
    const big = Buffer.alloc(4 << 20, 7) // more than the socket buffer: the first send is cut short
    let called = false
    t.true(a.writeWithFds(Buffer.from('x'), [file], () => (called = true)))
    t.false(called, 'the callback comes later, as write() does')
    a.writeWithFds(big, [file])
    closeSync(file) // the caller's own: the first went at once, the second was dup'ed
    a.end()
    const got: { bytes: number; files: number[] }[] = []
    for (;;) {
      const r = await recvfds(fdB, 1 << 16, 4)
      if (r.data.length === 0) break
      got.push({ bytes: r.data.length, files: r.fds.map(inode) })
      closeFds(r.fds)
    }
    t.true(called)
    t.deepEqual(got[0], { bytes: 1, files: [ino] }, 'the first chunk alone, with its fd')
    t.deepEqual(got[1].files, [ino], "the long chunk's fd with its first byte")
    t.true(got.slice(2).every((g) => g.files.length === 0))
    t.is(
      got.reduce((n, g) => n + g.bytes, 0),
      1 + big.length,
    )
    close(fdB)
    await closed(a)
    t.is(fdCount(), before)
  },
)

test("a listener that throws: 'uncaughtException' as with net, and the socket reads on, a batch delivered whole", async (t) => {
  const r = await runFixture('stream-throw.cjs')
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), {
    data: ['boom', 'after', 'w', 'x', 'y', 'z', 'last'],
    fds: [1, 1, 1, 1],
    caught: ['from data', 'from fds'],
  })
})

test.serial('sockets that only wait hold no read buffer', async (t) => {
  const sockets: UnixSocket[] = []
  const before = process.memoryUsage().arrayBuffers
  for (let i = 0; i < 150; i++) sockets.push(...pair())
  await new Promise((resolve) => setImmediate(resolve)) // every read has started
  const grown = process.memoryUsage().arrayBuffers - before
  // 64 KiB each would be 18.75 MiB; one shared read pool is all they need.
  t.true(grown < 1 << 20, `${grown} bytes for 300 waiting sockets`)
  for (const s of sockets) s.destroy()
  await closed(...sockets)
})

test.serial('chunks a consumer keeps stay intact while later reads come in', async (t) => {
  const [a, b] = pair()
  const words = ['one', 'two', 'three', 'four']
  const kept: Buffer[] = []
  const done = new Promise<void>((resolve) => {
    b.on('data', (d: Buffer) => {
      kept.push(d) // held, not copied, as a framing parser does
      if (kept.length < words.length) a.write(words[kept.length])
      else resolve()
    })
  })
  a.write(words[0])
  await done
  t.deepEqual(
    kept.map((d) => d.toString()),
    words,
  )
  a.destroy()
  await closed(a, b)
})

test.serial('a reader nobody consumes stops reading past its high-water mark', async (t) => {
  const [a, b] = pair()
  const chunk = Buffer.alloc(64 * 1024, 2)
  while (a.write(chunk)); // the kernel's buffer full, and a's queue at its mark
  // b reads up to its mark (readiness may come from another thread: wait for it), then stops.
  await waitUntil(() => b.readableLength >= b.readableHighWaterMark, 10_000, 'b read up to its mark')
  for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve))
  t.true(b.readableLength <= b.readableHighWaterMark + chunk.length, `b holds ${b.readableLength} bytes`)
  t.true(a.writableLength > 0, "what b did not read stays queued at a's end")
  a.destroy()
  b.destroy()
  await closed(a, b)
})

test('two copies of the stream module on one addon (modules loaded afresh) each read their own bytes', async (t) => {
  const r = await runFixture('stream-two-copies.cjs')
  t.is(r.code, 0, r.stderr)
  const expected = (p: string) => Array.from({ length: 50 }, (_, i) => `${p}${i},`).join('')
  t.deepEqual(JSON.parse(r.stdout), [expected('a'), expected('b')])
})

test.serial(
  "closing a socket's fd through close() under its stream: an 'error' (EBADF), not a read that waits forever",
  async (t) => {
    const [fdA, fdB] = socketpair()
    const a = new UnixSocket({ fd: fdA })
    a.on('data', () => {})
    await new Promise((resolve) => setImmediate(resolve)) // a's read has started
    close(fdA) // the stream's own fd, closed behind its back
    const [err] = (await once(a, 'error')) as [NodeJS.ErrnoException]
    t.is(err.code, 'EBADF')
    t.is(err.syscall, 'recvmsg')
    await closed(a)
    close(fdB)
  },
)
