'use strict'
// `npm run pack:all`: the release binaries for every platform package, built with zig
// (cargo-zigbuild, through `napi build -x`) against glibc 2.17 for the two glibc targets and
// against musl for the third; each checked by scripts/check-binary.js (symbol versions, linked
// libraries, architecture, stripped); then net-unix and the three platform packages packed to
// dist/ with `npm pack` — what `npm publish` would upload, to test first.
//
// The platform packages' `os`/`cpu`/`libc` fields are stamped here, into a staged copy of each
// npm/<platform>/ directory: npm refuses to install a workspace whose `cpu` or `libc` does not
// match the machine (it does not apply the optional-dependency skip to workspaces), so with the
// fields in the repository `npm ci` would fail on every machine for two of the three packages.
//
// Flags: --no-build   reuse the facade and loader already built (index.js, binding.js);
//                     the platform binaries are always (re)built — cargo makes that a no-op
//                     when nothing changed.
//        --only=a,b   build and pack only these platform packages (e.g. --only=linux-x64-gnu).
// Needs zig, cargo-zigbuild and the Rust targets: `bash scripts/setup-cross.sh` installs them.
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { checkBinary } = require('./check-binary.js')

const root = path.join(__dirname, '..')
const dist = path.join(root, 'dist')
const stage = path.join(root, 'target', 'pack-stage')
const crossTools = process.env.NET_UNIX_CROSS_TOOLS || path.join(require('node:os').homedir(), '.cache', 'net-unix-cross')

/** The platform packages: npm/<dir>, the zig target (suffix = glibc version), npm's platform fields. */
const PLATFORMS = [
  { dir: 'linux-x64-gnu', target: 'x86_64-unknown-linux-gnu.2.17', os: 'linux', cpu: 'x64', libc: 'glibc' },
  { dir: 'linux-arm64-gnu', target: 'aarch64-unknown-linux-gnu.2.17', os: 'linux', cpu: 'arm64', libc: 'glibc' },
  { dir: 'linux-x64-musl', target: 'x86_64-unknown-linux-musl', os: 'linux', cpu: 'x64', libc: 'musl' },
]

function main() {
  const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',')
  const platforms = only ? PLATFORMS.filter((p) => only.includes(p.dir)) : PLATFORMS
  if (only && platforms.length !== only.length) throw new Error(`unknown platform in ${only.join(',')}`)

  const rootPkg = require(path.join(root, 'package.json'))
  for (const p of PLATFORMS) {
    const pkg = require(path.join(root, 'npm', p.dir, 'package.json'))
    const wanted = rootPkg.optionalDependencies?.[pkg.name]
    if (pkg.version !== rootPkg.version || wanted !== rootPkg.version) {
      throw new Error(`version mismatch: net-unix ${rootPkg.version}, ${pkg.name} ${pkg.version}, optionalDependencies wants ${wanted}`)
    }
  }

  // Without them napi would `cargo install` an unpinned cargo-zigbuild and still lack zig.
  const zigbuild = path.join(crossTools, 'venv', 'bin', 'cargo-zigbuild')
  if (!fs.existsSync(zigbuild)) throw new Error(`${zigbuild} is missing: run \`bash scripts/setup-cross.sh\` first`)

  if (!process.argv.includes('--no-build')) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })

  fs.rmSync(dist, { recursive: true, force: true })
  fs.mkdirSync(dist)
  fs.rmSync(stage, { recursive: true, force: true })
  const packDirs = [root]
  for (const p of platforms) {
    const binary = `net-unix.${p.dir}.node`
    const out = path.join(stage, 'build', p.dir)
    fs.mkdirSync(out, { recursive: true })
    // --no-js and a throwaway --dts: the loader (binding.js) and its types come from the
    // development build; this only makes the binary.
    // zig and cargo-zigbuild from scripts/setup-cross.sh's virtualenv, first on PATH.
    execFileSync(
      'npx',
      ['napi', 'build', '--platform', '--release', '-x', '--target', p.target, '--manifest-path', 'crates/net-unix/Cargo.toml', '--output-dir', out, '--no-js', '--dts', 'unused.d.ts'],
      { cwd: root, stdio: 'inherit', env: { ...process.env, PATH: `${path.join(crossTools, 'venv', 'bin')}:${process.env.PATH}` } },
    )
    const built = path.join(out, binary)
    const report = checkBinary(built, p)
    console.log(`${binary}: ${report}`)

    const dir = path.join(stage, p.dir)
    fs.cpSync(path.join(root, 'npm', p.dir), dir, { recursive: true })
    const pkgFile = path.join(dir, 'package.json')
    const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8'))
    const stamped = {}
    for (const [k, v] of Object.entries(pkg)) {
      stamped[k] = v
      if (k === 'files') Object.assign(stamped, { os: [p.os], cpu: [p.cpu], libc: [p.libc] })
    }
    fs.writeFileSync(pkgFile, JSON.stringify(stamped, null, 2) + '\n')
    fs.copyFileSync(built, path.join(dir, binary))
    packDirs.push(dir)
  }
  for (const dir of packDirs) {
    const out = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dist], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' }))
    for (const p of out) console.log(`dist/${p.filename}  ${(p.size / 1024).toFixed(0)} KiB packed, ${p.entryCount} files`)
  }
}

module.exports = { PLATFORMS }
if (require.main === module) main()
