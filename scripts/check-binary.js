'use strict'
// Checks a release .node from its own ELF data (readelf, from binutils; it reads every
// architecture), so what a platform package promises is what the binary needs:
// - glibc packages: every symbol version it needs is GLIBC_2.17 or older, and it links only
//   glibc's own libraries;
// - musl packages: it links musl's libc only and needs no symbol version at all (musl has none;
//   a GLIBC_ version would mean glibc objects were linked in);
// - the machine is the package's cpu; the binary is stripped (no .symtab);
// - the release profile keeps the settings the benchmarks were measured with (LTO,
//   codegen-units = 1, strip).
// `node scripts/check-binary.js FILE PLATFORM` (e.g. linux-arm64-gnu) runs it by hand;
// scripts/pack-all.js runs it on every binary it packs.
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const MAX_GLIBC = [2, 17]
const GLIBC_LIBS = ['libc.so.6', 'libm.so.6', 'libpthread.so.0', 'libdl.so.2', 'librt.so.1', 'ld-linux-x86-64.so.2', 'ld-linux-aarch64.so.1']
const MUSL_LIBS = ['libc.so', 'libc.musl-x86_64.so.1']
const MACHINE = { x64: 'Advanced Micro Devices X86-64', arm64: 'AArch64' }

const readelf = (args, file) => execFileSync('readelf', [...args, '-W', file], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } })
const cmpVersion = (a, b) => a[0] - b[0] || (a[1] ?? 0) - (b[1] ?? 0) || (a[2] ?? 0) - (b[2] ?? 0)
const parseVersion = (s) => s.split('.').map(Number)

/** The release profile in the workspace Cargo.toml still has LTO, one codegen unit and strip. */
function checkProfile() {
  const toml = fs.readFileSync(path.join(__dirname, '..', 'Cargo.toml'), 'utf8')
  const section = toml.split(/^\[profile\.release\]\s*$/m)[1]?.split(/^\[/m)[0] ?? ''
  const want = { lto: /^lto\s*=\s*(true|"fat")\s*$/m, 'codegen-units': /^codegen-units\s*=\s*1\s*$/m, strip: /^strip\s*=\s*("symbols"|true)\s*$/m }
  const missing = Object.entries(want).filter(([, re]) => !re.test(section)).map(([k]) => k)
  if (missing.length) throw new Error(`[profile.release] in Cargo.toml lost ${missing.join(', ')}`)
}

/**
 * Throws on any broken promise; returns a one-line summary: size, machine, libraries, the
 * newest symbol version and the symbols that need it.
 */
function checkBinary(file, { cpu, libc }) {
  checkProfile()
  const problems = []
  const header = readelf(['-h'], file)
  const machine = header.match(/Machine:\s+(.*)/)?.[1].trim()
  if (machine !== MACHINE[cpu]) problems.push(`machine is ${machine}, want ${MACHINE[cpu]}`)
  if (!/Type:\s+DYN/.test(header)) problems.push('not a shared object')

  const needed = [...readelf(['-d'], file).matchAll(/\(NEEDED\)\s+Shared library: \[(.*?)\]/g)].map((m) => m[1])
  const allowed = libc === 'musl' ? MUSL_LIBS : GLIBC_LIBS
  const stray = needed.filter((lib) => !allowed.includes(lib))
  if (stray.length) problems.push(`links ${stray.join(', ')} (allowed: ${allowed.join(', ')})`)
  if (libc === 'musl' && !needed.some((lib) => MUSL_LIBS.includes(lib))) problems.push(`links no musl libc (${needed.join(', ')})`)

  if (/^\s*\[\s*\d+\]\s+\.symtab\s/m.test(readelf(['-S'], file))) problems.push('not stripped: has .symtab')

  // Symbol versions the binary needs (.gnu.version_r), and which imported symbols carry them.
  const versions = [...new Set([...readelf(['-V'], file).matchAll(/Name: (GLIBC_[0-9.]+)/g)].map((m) => m[1]))]
  const otherVersions = [...readelf(['-V'], file).matchAll(/Name: (\S+)\s+Flags/g)].map((m) => m[1]).filter((v) => !v.startsWith('GLIBC_'))
  let newest = null
  let newestSymbols = []
  if (libc === 'musl') {
    if (versions.length || otherVersions.length) problems.push(`needs symbol versions ${[...versions, ...otherVersions].join(', ')}; musl has none`)
  } else {
    if (otherVersions.length) problems.push(`needs non-glibc symbol versions ${otherVersions.join(', ')}`)
    const sorted = versions.map((v) => v.slice(6)).sort((a, b) => cmpVersion(parseVersion(a), parseVersion(b)))
    newest = sorted.at(-1)
    const tooNew = sorted.filter((v) => cmpVersion(parseVersion(v), MAX_GLIBC) > 0)
    const dynsyms = readelf(['--dyn-syms'], file)
    const symbolsAt = (v) => [...dynsyms.matchAll(new RegExp(`\\s(\\S+)@GLIBC_${v.replace(/\./g, '\\.')}\\b`, 'g'))].map((m) => m[1])
    if (tooNew.length) problems.push(`needs ${tooNew.map((v) => `GLIBC_${v} (${symbolsAt(v).join(', ')})`).join(', ')}; the limit is GLIBC_${MAX_GLIBC.join('.')}`)
    newestSymbols = newest ? symbolsAt(newest) : []
  }
  if (problems.length) throw new Error(`${path.basename(file)}: ${problems.join('; ')}`)

  const size = fs.statSync(file).size
  const versionPart = libc === 'musl' ? 'no symbol versions' : `newest symbol version GLIBC_${newest} (${newestSymbols.slice(0, 6).join(', ')}${newestSymbols.length > 6 ? ` and ${newestSymbols.length - 6} more` : ''}), limit GLIBC_${MAX_GLIBC.join('.')}`
  return `${size.toLocaleString('en-US')} bytes, ${machine}, stripped, links ${needed.join(' ')}, ${versionPart}`
}

module.exports = { checkBinary }

if (require.main === module) {
  const [file, platform] = process.argv.slice(2)
  const [, cpu, libc] = (platform ?? '').match(/^linux-(x64|arm64)-(gnu|musl)$/) ?? []
  if (!file || !cpu) {
    console.error('usage: node scripts/check-binary.js FILE linux-{x64,arm64}-{gnu,musl}')
    process.exit(2)
  }
  try {
    console.log(`ok ${file}: ${checkBinary(file, { cpu, libc: libc === 'gnu' ? 'glibc' : 'musl' })}`)
  } catch (err) {
    console.log(`FAIL ${err.message}`)
    process.exitCode = 1
  }
}
