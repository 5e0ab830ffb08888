import test from 'ava'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import {
  acceptSync,
  addvector,
  backlog,
  close,
  connectSync,
  invalid,
  listen,
  newmsg,
  recvmsgSync,
  sendmsgSync,
  sockflag,
} from '../index.js'
import {
  abstractName,
  fdCount,
  fdFlags,
  O_CLOEXEC,
  O_NONBLOCK,
  ROOT,
  run,
  runPython,
  startPython,
  tmpPath,
} from './helpers'

function send(fd: number, text: string): void {
  const m = newmsg()
  addvector(m, Buffer.from(text))
  sendmsgSync(fd, m)
}

function recv(fd: number): string {
  const buf = Buffer.alloc(256)
  const m = newmsg()
  addvector(m, buf)
  return buf.toString('utf8', 0, recvmsgSync(fd, m))
}

/** How many non-blocking connects a listener queues before the kernel says EAGAIN. */
function queuedConnects(address: string): number {
  const clients: number[] = []
  try {
    for (;;) {
      try {
        clients.push(connectSync(address, sockflag.NONBLOCK))
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return clients.length
        throw e
      }
    }
  } finally {
    clients.forEach(close)
  }
}

test.serial('listen, connectSync and acceptSync talk over a filesystem path', (t) => {
  const before = fdCount()
  const path = tmpPath()
  const l = listen(path)
  t.true(existsSync(path))
  const c = connectSync(path)
  const a = acceptSync(l)
  send(c, 'hello')
  t.is(recv(a), 'hello')
  send(a, 'back')
  t.is(recv(c), 'back')
  ;[a, c, l].forEach(close)
  t.is(fdCount(), before)
})

test.serial('listen and connect work with abstract names', (t) => {
  const name = abstractName()
  const l = listen(name)
  const c = connectSync(name)
  const a = acceptSync(l)
  send(c, 'abstract')
  t.is(recv(a), 'abstract')
  ;[a, c, l].forEach(close)
})

test.serial('a 107-byte path is accepted and a 108-byte one is invalid', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nu-'))
  const pad = (n: number): string => join(dir, 'x'.repeat(n - dir.length - 1))
  const l = listen(pad(107))
  close(l)
  const err = t.throws(() => listen(pad(108)), { instanceOf: invalid })
  t.is(err?.code, 'ERR_INVALID_UNIX_PATH')
  t.is(err?.address, pad(108))
})

test.serial('invalid addresses are refused before any syscall', (t) => {
  const before = fdCount()
  const bad = ['', '\0', 'a\0b', '\0a\0b', 'x'.repeat(108), `\0${'a'.repeat(108)}`, 'é'.repeat(54)]
  for (const address of bad) {
    for (const call of [() => listen(address), () => connectSync(address)]) {
      const err = t.throws(call, { instanceOf: invalid }, JSON.stringify(address))
      t.is(err?.code, 'ERR_INVALID_UNIX_PATH')
      t.is(err?.address, address)
    }
  }
  t.is(fdCount(), before)
})

test.serial('an abstract name of 107 bytes after the NUL is accepted', (t) => {
  const name = `\0${'n'.repeat(107 - String(process.pid).length)}${process.pid}`
  const l = listen(name)
  const c = connectSync(name)
  ;[c, l].forEach(close)
  t.pass()
})

test.serial('the default backlog is 10 and the last backlog option wins', (t) => {
  // Linux queues backlog + 1 connections before refusing with EAGAIN.
  const cases: [unknown[], number][] = [
    [[], 11],
    [[backlog(2)], 3],
    [[backlog(5), sockflag.NONBLOCK, backlog(1)], 2],
    [[backlog(0)], 1],
  ]
  for (const [options, expected] of cases) {
    const name = abstractName('bk')
    const l = listen(name, ...(options as []))
    t.is(queuedConnects(name), expected, JSON.stringify(options))
    close(l)
  }
})

test.serial('listen sockets are close-on-exec unless NOCLOEXEC, blocking unless NONBLOCK', (t) => {
  const a = listen(abstractName())
  t.truthy(fdFlags(a) & O_CLOEXEC)
  t.falsy(fdFlags(a) & O_NONBLOCK)
  const b = listen(abstractName(), sockflag.NOCLOEXEC | sockflag.NONBLOCK, backlog(3))
  t.falsy(fdFlags(b) & O_CLOEXEC)
  t.truthy(fdFlags(b) & O_NONBLOCK)
  const err = t.throws(() => acceptSync(b)) as NodeJS.ErrnoException
  t.is(err.code, 'EAGAIN')
  ;[a, b].forEach(close)
})

test.serial('accepted and connected sockets follow their own flags', (t) => {
  const name = abstractName()
  const l = listen(name)
  const c = connectSync(name, sockflag.NOCLOEXEC)
  const a = acceptSync(l, sockflag.NONBLOCK)
  t.falsy(fdFlags(c) & O_CLOEXEC)
  t.truthy(fdFlags(a) & O_CLOEXEC)
  t.truthy(fdFlags(a) & O_NONBLOCK)
  ;[a, c, l].forEach(close)
})

test.serial('listen does not unlink an existing path and leaks nothing when bind fails', (t) => {
  const path = tmpPath()
  const l = listen(path)
  const before = fdCount()
  const err = t.throws(() => listen(path)) as NodeJS.ErrnoException
  t.is(err.code, 'EADDRINUSE')
  t.is(err.errno, -98)
  t.is(err.syscall, 'listen')
  t.is((err as NodeJS.ErrnoException & { address: string }).address, path)
  t.is(err.message, `listen EADDRINUSE ${path}`)
  t.is(fdCount(), before)
  t.true(existsSync(path))
  close(l)
})

// listen(2) itself hardly ever fails on a fresh Unix socket, so strace makes it fail (fault
// injection on a real process): the file bind created must go, and the socket with it.
const haveStrace = spawnSync('strace', ['-V']).status === 0
;(haveStrace ? test : test.skip)(
  'a listen(2) that fails removes the socket file its bind created and closes the socket',
  async (t) => {
    const path = tmpPath()
    const script = `
    const u = require(process.env.NET_UNIX), fs = require('fs')
    const count = () => fs.readdirSync('/proc/self/fd').length
    const before = count()
    try { u.listen(process.argv[1]); console.log(JSON.stringify({ listened: true })) }
    catch (e) { console.log(JSON.stringify({ code: e.code, syscall: e.syscall, exists: fs.existsSync(process.argv[1]), leaked: count() - before })) }
  `
    const r = await run(
      'strace',
      [
        '-f',
        '-qq',
        '-o',
        '/dev/null',
        '-e',
        'trace=bind,listen',
        '-e',
        'inject=listen:error=EACCES',
        process.execPath,
        '-e',
        script,
        path,
      ],
      {
        env: { ...process.env, NET_UNIX: ROOT },
        timeout: 30000,
      },
    )
    t.is(r.code, 0, r.stderr)
    t.deepEqual(JSON.parse(r.stdout), { code: 'EACCES', syscall: 'listen', exists: false, leaked: 0 })
  },
)

test.serial('connect errors carry code, negative errno, syscall and address', (t) => {
  const missing = join(dirname(tmpPath()), 'nobody.sock')
  const e1 = t.throws(() => connectSync(missing)) as NodeJS.ErrnoException
  t.like(e1, { code: 'ENOENT', errno: -2, syscall: 'connect', address: missing } as object)
  const name = abstractName('none')
  const e2 = t.throws(() => connectSync(name)) as NodeJS.ErrnoException
  t.like(e2, { code: 'ECONNREFUSED', errno: -111, syscall: 'connect', address: name } as object)
})

test.serial('a bare number is not taken as a backlog', (t) => {
  const before = fdCount()
  const err = t.throws(() => listen(abstractName(), 128 as sockflag), { instanceOf: TypeError })
  t.is((err as NodeJS.ErrnoException).code, 'ERR_INVALID_ARG_TYPE')
  t.regex(err?.message ?? '', /backlog\(128\)/)
  t.throws(() => backlog(-1), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' } as object)
  t.throws(() => backlog(1.5), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' } as object)
  t.throws(() => backlog(2 ** 32), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' } as object)
  t.throws(() => backlog('1' as unknown as number), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' } as object)
  t.true(Object.isFrozen(backlog(1)))
  close(listen(abstractName(), backlog(2 ** 32 - 1)))
  t.is(fdCount(), before)
})

test.serial('abstract names interoperate with Python in both directions', async (t) => {
  const ours = abstractName('py')
  const l = listen(ours)
  const py = runPython(
    `import socket\ns=socket.socket(socket.AF_UNIX)\ns.connect(${JSON.stringify(ours)})\ns.sendall(b'from python')\ns.close()`,
  )
  const a = acceptSync(l)
  t.is(recv(a), 'from python')
  t.is((await py).code, 0)
  ;[a, l].forEach(close)

  const theirs = abstractName('pyl')
  const server = startPython(
    [
      'import socket,sys',
      's=socket.socket(socket.AF_UNIX)',
      `s.bind(${JSON.stringify(theirs)})`,
      's.listen(1)',
      'print("ready", flush=True)',
      'c,_=s.accept()',
      'c.sendall(c.recv(64).upper())',
    ].join('\n'),
  )
  t.is(await server.firstLine, 'ready')
  const c = connectSync(theirs)
  send(c, 'to python')
  t.is(recv(c), 'TO PYTHON')
  close(c)
  t.is((await server.done).code, 0)
})
