// Every exported function against bad input: each row gets its documented error, Promise forms
// reject (never throw), nothing crashes, and no fd is left behind.
import test from 'ava'
import { closeSync, openSync } from 'node:fs'
import * as nu from '../index.js'
import { abstractName, fdCount } from './helpers'

type Expect = {
  cls: 'TypeError' | 'RangeError' | 'invalid' | 'Error'
  code: string
  syscall?: string
  address?: string
}
const type = (): Expect => ({ cls: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
const range = (): Expect => ({ cls: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
const bad = (): Expect => ({ cls: 'invalid', code: 'ERR_INVALID_UNIX_PATH' })
const errno = (code: string, syscall: string, address?: string): Expect => ({ cls: 'Error', code, syscall, address })

const NEVER_OPEN = 2 ** 31 - 1 // a valid fd number above any rlimit: EBADF, and no test can reuse it
const UNKNOWN_FLAG = 0o1 // not NOCLOEXEC, not NONBLOCK
const any = <T>(v: unknown): T => v as T // bad input on purpose, past the types

function checkError(t: import('ava').ExecutionContext, err: unknown, want: Expect, row: string): void {
  const e = err as NodeJS.ErrnoException & { address?: string }
  const cls =
    want.cls === 'invalid'
      ? nu.invalid
      : want.cls === 'TypeError'
        ? TypeError
        : want.cls === 'RangeError'
          ? RangeError
          : Error
  t.true(e instanceof cls, `${row}: ${String(e)} is not a ${want.cls}`)
  t.is(e.code, want.code, `${row}: ${e.message}`)
  if (want.cls === 'Error') {
    t.true(typeof e.errno === 'number' && e.errno < 0, `${row}: errno ${e.errno}`)
    t.is(e.syscall, want.syscall, row)
    t.is(e.message.split(' ').slice(0, 2).join(' '), `${want.syscall} ${want.code}`, `${row}: message shape`)
    if (want.address !== undefined) t.is(e.address, want.address, row)
  }
}

test.serial('each bad input gets its documented error, Promise forms reject, and no fd leaks', async (t) => {
  const before = fdCount()
  const name = abstractName('bad')
  const listener = nu.listen(name)
  const client = nu.connectSync(name)
  const server = nu.acceptSync(listener)
  const [p, q] = nu.socketpair(nu.sockflag.NONBLOCK)
  const file = openSync(__filename, 'r')
  const msg = nu.newmsg()
  nu.addvector(msg, Buffer.from('x'))
  const fdsOnly = nu.newmsg()
  nu.addfiles(fdsOnly, file)
  const badFd = nu.newmsg()
  nu.addvector(badFd, Buffer.from('x'))
  nu.addfiles(badFd, NEVER_OPEN)
  const tooMany = Array(nu.MAX_FDS + 1).fill(file)
  const long = `/tmp/${'x'.repeat(103)}` // 108 bytes
  const abstract108 = `\0${'y'.repeat(108)}`

  const sync: [string, () => unknown, Expect][] = [
    // listen / backlog
    ['listen(number)', () => nu.listen(any(42)), type()],
    ['listen("")', () => nu.listen(''), bad()],
    ['listen(NUL inside)', () => nu.listen('/tmp/a\0b'), bad()],
    ['listen(108-byte path)', () => nu.listen(long), bad()],
    ['listen(108-byte abstract name)', () => nu.listen(abstract108), bad()],
    ['listen(unknown flag bit)', () => nu.listen(abstractName(), any(UNKNOWN_FLAG)), type()], // a bare number is not taken for a backlog,
    ['listen(NaN option)', () => nu.listen(abstractName(), any(NaN)), type()],
    ['listen(string option)', () => nu.listen(abstractName(), any('NONBLOCK')), type()],
    ['listen(name in use)', () => nu.listen(name), errno('EADDRINUSE', 'listen', name)],
    ['backlog(NaN)', () => nu.backlog(NaN), range()],
    ['backlog(-1)', () => nu.backlog(-1), range()],
    ['backlog(1.5)', () => nu.backlog(1.5), range()],
    ['backlog(2**32)', () => nu.backlog(2 ** 32), range()],
    ['backlog("5")', () => nu.backlog(any('5')), type()],
    // connectSync
    ['connectSync(number)', () => nu.connectSync(any(1)), type()],
    ['connectSync("")', () => nu.connectSync(''), bad()],
    [
      'connectSync(missing path)',
      () => nu.connectSync('/nonexistent/net-unix'),
      errno('ENOENT', 'connect', '/nonexistent/net-unix'),
    ],
    [
      'connectSync(nobody listening)',
      () => nu.connectSync(`${name}-none`),
      errno('ECONNREFUSED', 'connect', `${name}-none`),
    ],
    ['connectSync(unknown flag)', () => nu.connectSync(name, any(1 << 20)), range()],
    // acceptSync
    ['acceptSync("3")', () => nu.acceptSync(any('3')), type()],
    ['acceptSync(-1)', () => nu.acceptSync(-1), range()],
    ['acceptSync(1.5)', () => nu.acceptSync(1.5), range()],
    ['acceptSync(NaN)', () => nu.acceptSync(NaN), range()],
    ['acceptSync(2**31)', () => nu.acceptSync(2 ** 31), range()],
    ['acceptSync(closed fd)', () => nu.acceptSync(NEVER_OPEN), errno('EBADF', 'accept')],
    ['acceptSync(a file)', () => nu.acceptSync(file), errno('ENOTSOCK', 'accept')],
    ['acceptSync(connected socket)', () => nu.acceptSync(client), errno('EINVAL', 'accept')],
    ['acceptSync(unknown flag)', () => nu.acceptSync(listener, any(UNKNOWN_FLAG)), range()],
    // socketpair
    ['socketpair(unknown flag)', () => nu.socketpair(any(UNKNOWN_FLAG)), range()],
    ['socketpair("x")', () => nu.socketpair(any('x')), type()],
    // msghdr
    ['addvector(msg, string)', () => nu.addvector(nu.newmsg(), any('text')), type()],
    ['addvector(not a msghdr)', () => nu.addvector(any({}), Buffer.alloc(1)), type()],
    ['addfiles(msg, -1)', () => nu.addfiles(nu.newmsg(), -1), range()],
    ['addfiles(msg, "3")', () => nu.addfiles(nu.newmsg(), any('3')), type()],
    ['addfiles(msg, 254 fds)', () => nu.addfiles(nu.newmsg(), ...tooMany), range()],
    ['allocfiles(msg, 254)', () => nu.allocfiles(nu.newmsg(), nu.MAX_FDS + 1), range()],
    ['allocfiles(msg, NaN)', () => nu.allocfiles(nu.newmsg(), NaN), range()],
    ['allocfiles(msg, 0.5)', () => nu.allocfiles(nu.newmsg(), 0.5), range()],
    ['recvfiles(msg, -1)', () => nu.recvfiles(nu.newmsg(), -1), range()],
    ['recvfiles(null)', () => nu.recvfiles(any(null), 1), type()],
    ['finish({})', () => nu.finish(any({})), type()],
    ['sendmsgSync(closed fd)', () => nu.sendmsgSync(NEVER_OPEN, msg), errno('EBADF', 'sendmsg')],
    ['sendmsgSync(a file)', () => nu.sendmsgSync(file, msg), errno('ENOTSOCK', 'sendmsg')],
    ['sendmsgSync(listener)', () => nu.sendmsgSync(listener, msg), errno('ENOTCONN', 'sendmsg')],
    ['sendmsgSync(fds, no data)', () => nu.sendmsgSync(p, fdsOnly), range()],
    ['sendmsgSync(closed fd attached)', () => nu.sendmsgSync(p, badFd), errno('EBADF', 'sendmsg')],
    ['sendmsgSync(not a msghdr)', () => nu.sendmsgSync(p, any({ vectors: [] })), type()],
    ['recvmsgSync(listener)', () => nu.recvmsgSync(listener, msg), errno('EINVAL', 'recvmsg')],
    ['recvmsgSync(a file)', () => nu.recvmsgSync(file, msg), errno('ENOTSOCK', 'recvmsg')],
    // close / peercred / pending / registerproto
    ['close("3")', () => nu.close(any('3')), type()],
    ['close(closed fd)', () => nu.close(NEVER_OPEN), errno('EBADF', 'close')],
    ['peercred(a file)', () => nu.peercred(file), errno('ENOTSOCK', 'getsockopt')],
    ['peercred(closed fd)', () => nu.peercred(NEVER_OPEN), errno('EBADF', 'getsockopt')],
    ['pending(-1)', () => nu.pending(-1), range()],
    ['registerproto(1, fn)', () => nu.registerproto(any(1), async () => 0), type()],
    ['registerproto("x", 1)', () => nu.registerproto('x', any(1)), type()],
  ]
  for (const [row, fn, want] of sync) {
    try {
      fn()
      t.fail(`${row}: did not throw`)
    } catch (err) {
      checkError(t, err, want, row)
    }
  }

  const promised: [string, () => Promise<unknown>, Expect][] = [
    ['connect(number)', () => nu.connect(any(1)), type()],
    ['connect("")', () => nu.connect(''), bad()],
    ['connect(timeout -1)', () => nu.connect(name, { timeout: -1 }), range()],
    ['connect(timeout NaN)', () => nu.connect(name, { timeout: NaN }), range()],
    ['connect(signal "x")', () => nu.connect(name, { signal: any('x') }), type()],
    [
      'connect(missing path)',
      () => nu.connect('/nonexistent/net-unix'),
      errno('ENOENT', 'connect', '/nonexistent/net-unix'),
    ],
    ['connect(nobody listening)', () => nu.connect(`${name}-none`), errno('ECONNREFUSED', 'connect', `${name}-none`)],
    ['accept("x")', () => nu.accept(any('x')), type()],
    ['accept(closed fd)', () => nu.accept(NEVER_OPEN), errno('EBADF', 'accept')],
    ['accept(a file)', () => nu.accept(file), errno('ENOTSOCK', 'accept')],
    ['accept(connected socket)', () => nu.accept(client), errno('EINVAL', 'accept')],
    ['accept(options 5)', () => nu.accept(listener, any(5)), range()],
    ['sendmsg(not a msghdr)', () => nu.sendmsg(p, any({})), type()],
    ['sendmsg(closed fd)', () => nu.sendmsg(NEVER_OPEN, msg), errno('EBADF', 'sendmsg')],
    ['sendmsg(options 5)', () => nu.sendmsg(p, msg, any(5)), type()],
    ['sendmsg(fds, no data)', () => nu.sendmsg(p, fdsOnly), range()],
    ['recvmsg(listener)', () => nu.recvmsg(listener, msg), errno('EINVAL', 'recvmsg')],
    ['recvmsg(signal {})', () => nu.recvmsg(p, msg, { signal: any({}) }), type()],
    ['sendfds(data string)', () => nu.sendfds(p, any('x'), []), type()],
    ['sendfds(fds "x")', () => nu.sendfds(p, Buffer.from('x'), any('x')), type()],
    ['sendfds(fds, empty data)', () => nu.sendfds(p, Buffer.alloc(0), [file]), range()],
    ['sendfds(254 fds)', () => nu.sendfds(p, Buffer.from('x'), tooMany), range()],
    ['sendfds(fd -1)', () => nu.sendfds(p, Buffer.from('x'), [-1]), range()],
    ['sendfds(closed fd attached)', () => nu.sendfds(p, Buffer.from('x'), [NEVER_OPEN]), errno('EBADF', 'sendmsg')],
    ['sendfds(a file)', () => nu.sendfds(file, Buffer.from('x'), []), errno('ENOTSOCK', 'sendmsg')],
    ['recvfds(maxBytes -1)', () => nu.recvfds(p, -1, 0), range()],
    ['recvfds(maxBytes NaN)', () => nu.recvfds(p, NaN, 0), range()],
    ['recvfds(maxFds 254)', () => nu.recvfds(p, 1, nu.MAX_FDS + 1), range()],
    ['recvfds(maxFds "1")', () => nu.recvfds(p, 1, any('1')), type()],
    ['recvfds(a file)', () => nu.recvfds(file, 1, 0), errno('ENOTSOCK', 'recvmsg')],
    ['recvfds(closed fd)', () => nu.recvfds(NEVER_OPEN, 1, 0), errno('EBADF', 'recvmsg')],
    ['dial(number)', () => nu.dial(any(1), 'x'), type()],
    ['dial(unknown protocol)', () => nu.dial('tcp', 'x'), { cls: 'Error', code: 'ERR_UNKNOWN_PROTOCOL' }],
    ['dial("unix", "")', () => nu.dial('unix', ''), bad()],
    [
      'recvfds(already aborted)',
      () => nu.recvfds(p, 1, 0, { signal: AbortSignal.abort() }),
      { cls: 'Error', code: 'ABORT_ERR' },
    ],
  ]
  for (const [row, fn, want] of promised) {
    let promise: Promise<unknown>
    try {
      promise = fn()
    } catch (err) {
      t.fail(`${row}: threw synchronously (${String(err)})`)
      continue
    }
    t.true(promise instanceof Promise, row)
    const err = await promise.then(
      () => new Error(`${row}: resolved`),
      (e: unknown) => e,
    )
    if (want.code === 'ERR_UNKNOWN_PROTOCOL' || want.code === 'ABORT_ERR') {
      t.is((err as NodeJS.ErrnoException).code, want.code, row)
    } else checkError(t, err, want, row)
  }

  // Nothing was sent by any failing send, and nothing is pending anywhere.
  t.throws(() => nu.recvmsgSync(q, msg), { code: 'EAGAIN' }, 'a refused send must not have sent anything')
  closeSync(file)
  for (const fd of [listener, client, server, p, q]) {
    t.is(nu.pending(fd), 0)
    nu.close(fd)
  }
  t.is(fdCount(), before)
})

test.serial(
  'Buffer, Uint8Array, DataView, Float64Array and ArrayBuffer views with offsets send and receive the right bytes',
  async (t) => {
    const before = fdCount()
    const [a, b] = nu.socketpair()
    const backing = new ArrayBuffer(64)
    new Uint8Array(backing).forEach((_, i, arr) => (arr[i] = i))
    const views: [string, ArrayBufferView | ArrayBuffer, number[]][] = [
      ['Buffer.subarray', Buffer.from(backing).subarray(3, 7), [3, 4, 5, 6]],
      ['Uint8Array with offset', new Uint8Array(backing, 10, 3), [10, 11, 12]],
      ['DataView with offset', new DataView(backing, 20, 2), [20, 21]],
      ['Float64Array with offset', new Float64Array(backing, 32, 1), [32, 33, 34, 35, 36, 37, 38, 39]],
      ['ArrayBuffer', backing.slice(60), [60, 61, 62, 63]],
    ]
    for (const [what, view, want] of views) {
      t.is(await nu.sendfds(a, view, []), want.length, what)
      // Receive into a DataView that starts mid-buffer: only its window may be written.
      const landing = new Uint8Array(32).fill(0xee)
      const msg = nu.newmsg()
      nu.addvector(msg, new DataView(landing.buffer, 5, want.length))
      t.is(nu.recvmsgSync(b, msg), want.length, what)
      t.deepEqual([...landing.subarray(5, 5 + want.length)], want, what)
      t.true(
        landing.subarray(0, 5).every((x) => x === 0xee) && landing.subarray(5 + want.length).every((x) => x === 0xee),
        `${what}: wrote outside the view`,
      )
    }
    // Several vectors gather in order and scatter in order.
    const out = nu.newmsg()
    nu.addvector(out, new Uint8Array([1, 2]))
    nu.addvector(out, new DataView(new Uint8Array([0, 3, 4]).buffer, 1))
    t.is(nu.sendmsgSync(a, out), 4)
    const first = Buffer.alloc(1)
    const rest = Buffer.alloc(3)
    const inMsg = nu.newmsg()
    nu.addvector(inMsg, first)
    nu.addvector(inMsg, rest)
    t.is(nu.recvmsgSync(b, inMsg), 4)
    t.deepEqual([...first, ...rest.subarray(0, 3)], [1, 2, 3, 4])
    nu.close(a)
    nu.close(b)
    t.is(fdCount(), before)
  },
)
