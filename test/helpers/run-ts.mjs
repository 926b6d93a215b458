#!/usr/bin/env node
// Runs one TypeScript test file (or script) directly, transpiled as tap does:
//   node test/helpers/run-ts.mjs test/integration/interop.test.ts
// Used where tap itself cannot run (inside a user namespace: userns.test.ts).
import { register } from 'node:module'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

process.env.TS_NODE_TRANSPILE_ONLY ??= '1'
register('@isaacs/ts-node-temp-fork-for-pr-2009/esm/transpile-only', import.meta.url)
const file = process.argv[2]
if (file === undefined) throw new Error('usage: run-ts.mjs FILE.ts')
await import(pathToFileURL(resolve(file)).href)
