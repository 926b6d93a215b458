// Write-side differential test: random lower stacks (files, dirs, symlinks,
// fifos, whiteouts, opaque dirs, hardlinks) and random operation sequences,
// applied to the kernel's overlayfs (redirect_dir=on) and to overlayts on
// identical copies of the layers. The generator also makes names of any bytes
// (not UTF-8, spaces, newlines, 255 bytes), paths near PATH_MAX, ns times
// before 1970 and far ahead, renameat2 with each flag, lower hardlinks changed
// and read through their other names, and descriptors held across copy-ups
// (see test/helpers/ops.ts). Outcomes (value or errno) per operation,
// then the merged trees and the upper dirs (whiteouts, opaque and redirect
// xattrs, modes, owners, contents, deterministic mtimes) must be the same,
// but for the one modeled edge of passthrough (a descriptor opened read-only on
// a lower file keeps reading the lower copy: see runCase and
// differential-passthrough.test.ts).
// One pair of mounts per run; on failure fast-check shrinks the sequence and
// the reproducer is printed.
//
// OVERLAYTS_DIFF_RUNS / OVERLAYTS_DIFF_OPS / OVERLAYTS_DIFF_SEED tune it; for
// many seeds use scripts/differential.mjs.
import t from 'tap'
import fc from 'fast-check'
import { caseArb, checkCase } from '../helpers/ops.js'

const runs = Number(process.env.OVERLAYTS_DIFF_RUNS ?? 25)
const maxOps = Number(process.env.OVERLAYTS_DIFF_OPS ?? 80)
// A fixed seed: CI runs the same cases every time (OVERLAYTS_DIFF_SEED picks others;
// scripts/differential.mjs runs as many seeds as asked).
const seed = Number(process.env.OVERLAYTS_DIFF_SEED ?? 20261123)

t.test(`kernel overlayfs vs overlayts: ${runs} random stacks x up to ${maxOps} ops`, async t => {
  const details = await fc.check(fc.asyncProperty(caseArb(maxOps), async (c) => { await checkCase(c) }), {
    numRuns: runs,
    seed,
    // Shrinking remounts for every try: bound it so CI stays within a few minutes.
    interruptAfterTimeLimit: 150_000,
    markInterruptAsFailure: false
  })
  if (details.failed) {
    const err = details.errorInstance
    const msg = err instanceof Error ? err.message : String(err)
    // The reproducer goes into the TAP diagnostic too: stderr may not reach the log.
    t.fail(`differs after ${details.numShrinks} shrinks (seed ${details.seed}, path ${JSON.stringify(details.counterexamplePath)})`, { diagnostic: true, reproducer: msg })
    process.stderr.write(`# reproducer (seed ${details.seed}, path ${JSON.stringify(details.counterexamplePath)}):\n${msg.split('\n').map(l => '#   ' + l).join('\n')}\n`)
  }
  if (!details.failed) {
    t.pass(`${details.numRuns} of ${details.numRuns} runs identical${details.interrupted ? ' (interrupted by the time limit)' : ''}`)
  }
})
