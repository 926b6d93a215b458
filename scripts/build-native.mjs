#!/usr/bin/env node
// Postinstall: build the native pieces from source.
//   1. native/                 -> native/build/Release/overlayts_native.node
//   2. node_modules/fuse-native (patched by patch-package) against the
//      system libfuse2 -> node_modules/fuse-native/build/Release/fuse.node
// The fuse-native prebuild is deleted first so a failed build can never
// silently fall back to the unpatched binary.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const APT_HINT = 'apt-get install -y libfuse2 libfuse-dev fuse3 pkg-config'

function fail (msg) {
  console.error(`build-native: error: ${msg}`)
  process.exit(1)
}

// --- prerequisites ---------------------------------------------------------
try {
  execFileSync('pkg-config', ['--exists', 'fuse'], { stdio: 'ignore' })
} catch (err) {
  const what = err.code === 'ENOENT' ? 'pkg-config not found' : 'libfuse-dev (pkg-config "fuse") not found'
  fail(`${what}; install the build dependencies with: ${APT_HINT}`)
}

// --- locate node-gyp ---------------------------------------------------------
function findNodeGyp () {
  const candidates = [
    join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    // npm's bundled copy
    process.env.npm_execpath ? join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js') : null,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), '..', 'share', 'nodejs', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    '/usr/share/nodejs/node-gyp/bin/node-gyp.js'
  ]
  for (const c of candidates) if (c && existsSync(c)) return c
  return null
}
const nodeGyp = findNodeGyp()
if (!nodeGyp) fail('node-gyp not found (neither node_modules/node-gyp nor npm\'s bundled copy); run npm install')

// Use the local Node headers when present (no download needed), unless the
// caller already chose a nodedir.
const gypArgs = ['rebuild']
if (!process.env.npm_config_nodedir && !process.env.NPM_CONFIG_NODEDIR) {
  const prefix = resolve(dirname(process.execPath), '..')
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) gypArgs.push(`--nodedir=${prefix}`)
}

function gyp (cwd, label) {
  console.log(`build-native: building ${label} (${cwd})`)
  const r = spawnSync(process.execPath, [nodeGyp, ...gypArgs], { cwd, stdio: 'inherit', env: process.env })
  if (r.error) fail(`could not run node-gyp for ${label}: ${r.error.message}`)
  if (r.status !== 0) fail(`node-gyp rebuild failed for ${label} (exit ${r.status}); see the output above. Build deps: ${APT_HINT} (plus make, g++ and python3)`)
}

// --- 1. project addon ----------------------------------------------------------
const nativeDir = join(root, 'native')
gyp(nativeDir, 'native/overlayts_native')
const nativeOut = join(nativeDir, 'build', 'Release', 'overlayts_native.node')
if (!existsSync(nativeOut)) fail(`${nativeOut} was not produced`)

// --- 2. fuse-native ------------------------------------------------------------
const fuseDir = join(root, 'node_modules', 'fuse-native')
if (!existsSync(join(fuseDir, 'package.json'))) fail('node_modules/fuse-native is missing; run npm install')
// patch-package must have run: the patched index.js no longer uses fuse-shared-library
const fuseIndex = join(fuseDir, 'index.js')
if (!existsSync(fuseIndex) || /fuse-shared-library/.test(readFileSync(fuseIndex, 'utf8'))) {
  fail('node_modules/fuse-native is not patched (patches/fuse-native+2.2.6.patch); run `npx patch-package`')
}
rmSync(join(fuseDir, 'prebuilds'), { recursive: true, force: true })
gyp(fuseDir, 'fuse-native')
const fuseOut = join(fuseDir, 'build', 'Release', 'fuse.node')
if (!existsSync(fuseOut)) fail(`${fuseOut} was not produced`)

// --- smoke test: both load (links libfuse.so.2) --------------------------------
const require = createRequire(import.meta.url)
try {
  require(nativeOut)
  const Fuse = require(fuseDir)
  if (typeof Fuse !== 'function' || Fuse.UTIME_OMIT !== 0x3ffffffe) throw new Error('unexpected fuse-native exports (unpatched?)')
} catch (err) {
  fail(`built addons do not load: ${err.message}`)
}
console.log('build-native: ok')
