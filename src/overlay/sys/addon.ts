/**
 * Loads the project's N-API addon (native/: overlayts_native.c and
 * fuse_dev.c, one module) from <repo>/native/build/Release, where <repo> is
 * the nearest ancestor directory holding package.json: that works from src/
 * (tests) and from dist/ alike. Each user types the part it calls
 * (sys/native.ts, fuse/kernel/device.ts).
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ADDON = join('native', 'build', 'Release', 'overlayts_native.node')

function findRepoRoot (from: string): string {
  let dir = from
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir
    const parent = dirname(dir)
    if (parent === dir) throw new Error(`overlayts: no package.json above ${from}; cannot locate ${ADDON}`)
    dir = parent
  }
}

let loaded: unknown

/** The addon's exports (loaded once); throws a clear error if it is not built. */
export function loadAddon (): unknown {
  if (loaded !== undefined) return loaded
  const file = join(findRepoRoot(dirname(fileURLToPath(import.meta.url))), ADDON)
  if (!existsSync(file)) {
    throw new Error(`overlayts: native addon missing at ${file}; run \`node scripts/build-native.mjs\` (needs libfuse-dev, pkg-config and a C toolchain)`)
  }
  loaded = createRequire(import.meta.url)(file)
  return loaded
}
