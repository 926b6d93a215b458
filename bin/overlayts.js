#!/usr/bin/env node
// The CLI entry: everything lives in src/cli (compiled to dist/).
'use strict'

// libuv's thread pool runs the daemon's file I/O and copy-ups; its default 4
// threads would let four long copy-ups stall every read and write. It is sized
// once, at first use, so this must run before anything else is loaded. That is
// also why this file is CommonJS (bin/package.json): Node loads an ES module
// entry with asynchronous reads, which would size the pool before this line.
process.env.UV_THREADPOOL_SIZE ??= '16'

import('../dist/src/cli/main.js').then(({ main }) => main(process.argv.slice(2))).then(
  (code) => { if (typeof code === 'number') process.exitCode = code },
  (err) => { process.stderr.write(`overlayts: ${err instanceof Error ? err.message : String(err)}\n`); process.exitCode = 1 }
)
