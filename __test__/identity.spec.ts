// Identity across processes, with peers whose uid and gid differ (setpriv): the suite runs as
// root, where uid = gid = 0 and a swap of the two would pass unseen.
import test from 'ava'
import { once } from 'node:events'
import * as nu from '../index.js'
import { abstractName, OTHER, pythonPath, startAsOther, within } from './helpers'

test('a peer running as uid 1000, gid 2000: UnixSocket#peercred, peercred() and accept()ed sockets name it', async (t) => {
  const name = abstractName('id')
  const server = nu.createServer()
  t.teardown(() => server.close())
  server.listen(name)
  await once(server, 'listening')
  // Connects, says so, and stays until we hang up.
  const peerSource = `import socket; s = socket.socket(socket.AF_UNIX); s.connect(${JSON.stringify(name)}); print('in', flush=True); s.recv(1)`
  const peer = startAsOther(pythonPath(), ['-c', peerSource])
  t.teardown(() => peer.child.kill('SIGKILL'))
  const [conn] = (await within(once(server, 'connection'), 10000, 'the peer connecting')) as [nu.UnixSocket]
  t.teardown(() => conn.destroy())
  const expected = { pid: peer.child.pid, ...OTHER }
  t.deepEqual(conn.peercred(), expected, 'UnixSocket#peercred')
  t.deepEqual(nu.peercred(conn.fd), expected, 'peercred() of the same socket')
  conn.destroy()
  server.close()
  t.is((await peer.done).code, 0)

  // The Promise API's accept, and the client's side: a UnixSocket connected to a server of that user.
  const l = nu.listen(abstractName('id2'))
  const again = startAsOther(pythonPath(), [
    '-c',
    peerSource.replace(JSON.stringify(name), JSON.stringify(nu.localaddr(l))),
  ])
  t.teardown(() => again.child.kill('SIGKILL'))
  const fd = await within(nu.accept(l), 10000, 'accept')
  t.deepEqual(nu.peercred(fd), { pid: again.child.pid, ...OTHER }, 'peercred() of an accept()ed socket')
  nu.closeFds([fd, l])
  await again.done

  const srvName = abstractName('id3')
  const serverSource = `import socket; l = socket.socket(socket.AF_UNIX); l.bind(${JSON.stringify(srvName)}); l.listen(); print('ready', flush=True); c, _ = l.accept(); c.recv(1)`
  const srv = startAsOther(pythonPath(), ['-c', serverSource])
  t.teardown(() => srv.child.kill('SIGKILL'))
  t.is(await srv.firstLine, 'ready')
  const client = nu.createConnection(srvName)
  t.teardown(() => client.destroy())
  await once(client, 'connect')
  t.deepEqual(client.peercred(), { pid: srv.child.pid, ...OTHER }, "a client's UnixSocket#peercred")
  client.destroy()
  await srv.done
})

test('datagram credentials (SCM_CREDENTIALS) of a sender running as uid 1000, gid 2000, on every receive path', async (t) => {
  const name = abstractName('idg')
  const rx = nu.dgramSocket({ bind: name, credentials: true })
  const ev = nu.createSocket({ type: 'unix_dgram', credentials: true })
  t.teardown(() => ev.close())
  const evName = abstractName('idev')
  const listening = once(ev, 'listening')
  ev.bind(evName)
  await listening
  const sender = startAsOther(pythonPath(), [
    '-c',
    `import socket, os; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for i in range(3): s.sendto(b'hi', ${JSON.stringify(name)})
s.sendto(b'ev', ${JSON.stringify(evName)})`,
  ])
  const [, rinfo] = (await within(once(ev, 'message'), 10000, "the evented socket's 'message'")) as [
    Buffer,
    nu.RemoteInfo,
  ]
  const pid = sender.child.pid
  t.is((await sender.done).code, 0)
  t.deepEqual(rinfo.cred, { pid, ...OTHER }, "createSocket's rinfo.cred")
  t.deepEqual(nu.recvfromSync(rx, 16, { credentials: true }).cred, { pid, ...OTHER }, 'recvfromSync')
  t.deepEqual((await nu.recvfrom(rx, 16, { credentials: true })).cred, { pid, ...OTHER }, 'recvfrom')
  const [many] = await nu.recvfromMany(rx, 4, 16, { credentials: true })
  t.deepEqual(many.cred, { pid, ...OTHER }, 'recvfromMany')
  nu.close(rx)
  ev.close()
})
