'use strict'
// `npm run pack:all`: release build, the .node copied into the platform package, and both
// tarballs written to dist/ with `npm pack` — what `npm publish` would upload, to test first.
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const platformDir = path.join(root, 'npm', 'linux-x64-gnu')
const binary = 'net-unix.linux-x64-gnu.node'
const dist = path.join(root, 'dist')
const npm = (args, cwd) => execFileSync('npm', args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' })

const { version } = require(path.join(root, 'package.json'))
const platform = require(path.join(platformDir, 'package.json'))
const wanted = require(path.join(root, 'package.json')).optionalDependencies?.[platform.name]
if (platform.version !== version || wanted !== version) {
  throw new Error(`version mismatch: net-unix ${version}, ${platform.name} ${platform.version}, optionalDependencies wants ${wanted}`)
}

if (!process.argv.includes('--no-build')) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })
fs.copyFileSync(path.join(root, binary), path.join(platformDir, binary))
fs.rmSync(dist, { recursive: true, force: true })
fs.mkdirSync(dist)
for (const dir of [root, platformDir]) {
  const out = JSON.parse(npm(['pack', '--json', '--pack-destination', dist], dir))
  for (const p of out) console.log(`dist/${p.filename}  ${(p.size / 1024).toFixed(0)} KiB packed, ${p.entryCount} files`)
}
