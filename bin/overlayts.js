#!/usr/bin/env node
// The CLI entry: everything lives in src/cli (compiled to dist/).
import { main } from '../dist/src/cli/main.js'

main(process.argv.slice(2)).then(
  (code) => { if (typeof code === 'number') process.exitCode = code },
  (err) => { process.stderr.write(`overlayts: ${err instanceof Error ? err.message : String(err)}\n`); process.exitCode = 1 }
)
