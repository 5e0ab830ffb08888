'use strict'
// A short run through every native path, for scripts/valgrind.sh: sync and async fd passing,
// truncation, bad fds, close while pending, abort, accept/connect.
const fs = require('node:fs')
const nu = require('..')

async function main() {
  const file = fs.openSync(__filename, 'r')
  const [a, b] = nu.socketpair()
  for (let i = 0; i < 200; i++) {
    await nu.sendfds(a, Buffer.from('vg'), [file, file, file])
    const r = await nu.recvfds(b, 2, i % 4) // 0..3 of 3: truncation on some
    r.fds.forEach((fd) => nu.close(fd))
  }
  const msg = nu.newmsg()
  nu.addvector(msg, Buffer.from('m'))
  nu.addfiles(msg, file)
  nu.addfiles(msg, file, file)
  nu.sendmsgSync(a, msg)
  const into = nu.newmsg()
  nu.addvector(into, new DataView(new ArrayBuffer(8), 3, 2))
  nu.allocfiles(into, 2)
  nu.recvmsgSync(b, into)
  nu.recvfiles(into, 1).forEach((fd) => nu.close(fd))
  nu.finish(into)
  const pending = nu.recvfds(b, 1, 1).catch((e) => e.code)
  const controller = new AbortController()
  const aborted = nu.recvfds(a, 1, 1, { signal: controller.signal }).catch((e) => e.code)
  controller.abort()
  nu.close(b)
  console.log('close while pending:', await pending, 'abort:', await aborted)
  await nu.sendfds(a, Buffer.from('x'), [2 ** 31 - 1]).catch((e) => console.log('bad fd:', e.code))
  const name = `\0net-unix-vg-${process.pid}`
  const l = nu.listen(name)
  const [c, s] = await Promise.all([nu.connect(name), nu.accept(l)])
  console.log('peercred pid ok:', nu.peercred(s).pid === process.pid)
  ;[c, s, l, a].forEach((fd) => nu.close(fd))
  fs.closeSync(file)
}
main()
