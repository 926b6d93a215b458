#!/usr/bin/env node
// Differential seed runner: the kernel's overlayfs vs overlayts on random
// stacks and random operation sequences (test/helpers/ops.ts).
//   node scripts/differential.mjs --seeds 200 --ops 200 [--first 1] [--shrink]
// Prints one line per seed, a reproducer per failure, then
// "N seeds, N ops each: N passed, N failed". Needs root, /dev/fuse, a build (npx tsc -p .).
import { register } from 'node:module'
import { parseArgs } from 'node:util'

// The helpers are TypeScript: load them as tap does (transpile only).
process.env.TS_NODE_TRANSPILE_ONLY ??= '1'
register('@isaacs/ts-node-temp-fork-for-pr-2009/esm/transpile-only', import.meta.url)

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '20' },
    ops: { type: 'string', default: '100' },
    first: { type: 'string', default: '1' },
    shrink: { type: 'boolean', default: false }
  }
})
const { runSeeds } = await import('../test/helpers/ops.ts')
const failed = await runSeeds({ seeds: Number(values.seeds), ops: Number(values.ops), firstSeed: Number(values.first), shrink: values.shrink })
process.exitCode = failed.length > 0 ? 1 : 0
