import test from 'ava'
import { once } from 'node:events'
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import * as net from 'node:net'
import { UnixSocket, close, closeFds, createConnection, createServer, socketpair } from '../index.js'
import { fdCount, startFixture, tmpPath } from './helpers'

function readAt0(fd: number): string {
  const buf = Buffer.alloc(256)
  return buf.toString('utf8', 0, readSync(fd, buf, 0, buf.length, 0))
}

test.serial('Python socket.recv_fds / send_fds on a stream socket talk to UnixSocket both ways', async (t) => {
  const before = fdCount()
  const theirs = tmpPath('py.txt')
  writeFileSync(theirs, 'python file')
  const ours = tmpPath('node.txt')
  writeFileSync(ours, 'node file')
  const [fdA, fdB] = socketpair()
  // It reads our fd and answers with the text it read and an fd of its own, then ends its side.
  const py = startFixture('stream-interop-peer.py', [], {
    stdio: ['ignore', 'pipe', 'pipe', fdB],
    env: { ...process.env, THEIRS: theirs },
  })
  close(fdB)
  const s = new UnixSocket({ fd: fdA })
  const file = openSync(ours, 'r')
  s.writeWithFds('hi', [file])
  closeSync(file)
  let fdText = ''
  s.on('fds', (fds: number[]) => {
    fdText = readAt0(fds[0])
    closeFds(fds)
  })
  let text = ''
  s.on('data', (d: Buffer) => (text += d))
  await once(s, 'end')
  const r = await py.done
  t.is(r.code, 0, r.stderr)
  t.is(text, 'py:hi:node file')
  t.is(fdText, 'python file')
  if (!s.closed) await once(s, 'close')
  t.is(fdCount(), before)
})

test.serial("bytes flow both ways between UnixSocket and Node's net.Socket", async (t) => {
  const payload = randomBytes(4 << 20)
  const digest = createHash('sha256').update(payload).digest('hex')
  // (Not for-await: finishing it destroys the socket, and the answer still has to go out.)
  const sha = (stream: NodeJS.ReadableStream): Promise<string> =>
    new Promise((resolve) => {
      const h = createHash('sha256')
      stream.on('data', (chunk: Buffer) => h.update(chunk))
      stream.on('end', () => resolve(h.digest('hex')))
    })
  // net.Server <- createConnection
  const p1 = tmpPath()
  const netServer = net.createServer({ allowHalfOpen: true }, (c) => sha(c).then((d) => c.end(d)))
  await new Promise<void>((resolve) => netServer.listen(p1, resolve))
  const ours = createConnection(p1)
  ours.end(payload)
  let reply = ''
  for await (const chunk of ours) reply += chunk
  t.is(reply, digest)
  await new Promise((resolve) => netServer.close(resolve))
  // UnixServer <- net.createConnection
  const p2 = tmpPath()
  const server = createServer({ allowHalfOpen: true }, (c) => sha(c).then((d) => c.end(d)))
  server.listen(p2)
  await once(server, 'listening')
  const theirs = net.createConnection(p2)
  theirs.end(payload)
  let reply2 = ''
  for await (const chunk of theirs) reply2 += chunk
  t.is(reply2, digest)
  await new Promise((resolve) => server.close(resolve))
})
