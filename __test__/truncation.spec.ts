// Less room than what arrives, at every size: the first fds that fit are handed out in order
// and readable, `truncated` says exactly when some were dropped, the rest are closed.
import test from 'ava'
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import * as nu from '../index.js'
import { fdCount, tmpPath } from './helpers'

const SENT = 8

/** Eight files with distinct contents, opened for reading. */
function files(): { fds: number[]; texts: string[]; done: () => void } {
  const dir = dirname(tmpPath())
  const texts = Array.from({ length: SENT }, (_, i) => `file ${i}`)
  const fds = texts.map((text, i) => {
    writeFileSync(join(dir, String(i)), text)
    return openSync(join(dir, String(i)), 'r')
  })
  return { fds, texts, done: () => fds.forEach((fd) => closeSync(fd)) }
}

const read = (fd: number): string => readFileSync(`/proc/self/fd/${fd}`, 'utf8')

test.serial(
  'recvfds with room for 0..8 of 8 fds: the first ones, readable, truncated exactly when short, no leak',
  async (t) => {
    const { fds, texts, done } = files()
    const [a, b] = nu.socketpair()
    const before = fdCount()
    for (let room = 0; room <= SENT; room++) {
      await nu.sendfds(a, Buffer.from('abcdefgh'), fds)
      const r = await nu.recvfds(b, 8, room)
      t.is(r.fds.length, room, `room ${room}`)
      t.is(r.truncated, room < SENT, `room ${room}`)
      t.deepEqual(r.fds.map(read), texts.slice(0, room), `room ${room}: the first fds, in order`)
      t.is(r.data.toString(), 'abcdefgh')
      r.fds.forEach((fd) => nu.close(fd))
      t.is(fdCount(), before, `room ${room}: the fds that did not fit were closed`)
    }
    nu.close(a)
    nu.close(b)
    done()
  },
)

test.serial('the msghdr path at every room size: recvfiles hands out what fit, finish closes the rest', async (t) => {
  const { fds, texts, done } = files()
  const [a, b] = nu.socketpair()
  const before = fdCount()
  const out = nu.newmsg()
  nu.addvector(out, Buffer.from('z'))
  nu.addfiles(out, ...fds.slice(0, 3))
  nu.addfiles(out, ...fds.slice(3)) // two control messages, delivered together
  for (let room = 0; room <= SENT; room++) {
    nu.sendmsgSync(a, out)
    const msg = nu.newmsg()
    nu.addvector(msg, Buffer.alloc(1))
    nu.allocfiles(msg, room)
    t.is(nu.recvmsgSync(b, msg), 1)
    t.is(msg.truncated, room < SENT, `room ${room}`)
    const half = Math.floor(room / 2)
    const taken = nu.recvfiles(msg, half) // take only some; finish must close the others
    t.deepEqual(taken.map(read), texts.slice(0, half), `room ${room}`)
    taken.forEach((fd) => nu.close(fd))
    nu.finish(msg)
    t.is(fdCount(), before, `room ${room}`)
  }
  nu.close(a)
  nu.close(b)
  done()
})

test.serial(
  'a data buffer smaller than the message: the fds come with the first read, the rest of the bytes with the next',
  async (t) => {
    const { fds, texts, done } = files()
    const [a, b] = nu.socketpair()
    const before = fdCount()
    for (let size = 1; size < 8; size++) {
      await nu.sendfds(a, Buffer.from('abcdefgh'), fds.slice(0, 2))
      const first = await nu.recvfds(b, size, 2)
      t.is(first.data.toString(), 'abcdefgh'.slice(0, size))
      t.deepEqual(first.fds.map(read), texts.slice(0, 2))
      t.false(first.truncated)
      first.fds.forEach((fd) => nu.close(fd))
      const rest = await nu.recvfds(b, 16, 2)
      t.is(rest.data.toString(), 'abcdefgh'.slice(size))
      t.deepEqual(rest.fds, [])
    }
    t.is(fdCount(), before)
    nu.close(a)
    nu.close(b)
    done()
  },
)
