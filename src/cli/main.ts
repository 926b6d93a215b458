/**
 * Command line. Three shapes start the same daemon:
 *   overlayts mount [-f] -o lowerdir=..,upperdir=..,workdir=.. MERGED
 *   overlayts -o OPTS MERGED                     (as fuse-overlayfs)
 *   overlayts SOURCE MERGED -o OPTS              (as mount(8)'s FUSE helper calls it)
 * and `overlayts umount MERGED` ends it. Without -f the command returns once
 * the mount is live, leaving the daemon running detached.
 *
 * Start-up time is part of every container start, so this module loads
 * nothing heavy: arguments are read with node:util's parseArgs, and each
 * command imports what it needs. The detaching parent parses no mount
 * options at all (the daemon it starts does, and reports any error back).
 */
import * as path from 'node:path'
import { parseArgs } from 'node:util'
import { detachDaemon, READY_FD_ENV, reportReady } from './detach.js'

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
type LogLevel = typeof LEVELS[number]

const USAGE = `usage:
  overlayts mount [-f] [-d] -o lowerdir=L1:L2[,upperdir=U,workdir=W,...] [SOURCE] MERGED
  overlayts -o OPTS MERGED                  (fuse-overlayfs' shape)
  overlayts SOURCE MERGED -o OPTS           (mount(8)'s FUSE helper shape)
  overlayts umount MERGED
  overlayts index build|verify|drop -o lowerdir=...,workdir=W[,index=PATH]
  overlayts diff [MERGED | -o lowerdir=...[,upperdir=...]] [--json]    (each: TOOL --help)
  overlayts layers [MERGED | -o lowerdir=...[,upperdir=...]] [--json]
  overlayts which [-o lowerdir=...[,upperdir=...]] [--json] PATH...
  overlayts commit [MERGED | -o lowerdir=...,upperdir=...] --output FILE.tar[.gz]|- [--json]
  overlayts unpack [--whiteouts oci|kernel] [--digest sha256:HEX] [--json] LAYER DIR

options:
  -o OPTS              comma-separated: lowerdir=L1:L2,upperdir=U,workdir=W,index=PATH|off,ro,...
  -f, --foreground     stay in the foreground
  -d, --debug          log every operation
  --log-file F         write the JSON log here (the detached daemon logs nowhere otherwise)
  --log-level L        ${LEVELS.join(', ')} (default info)
  -h, --help           this text
`

const FLAGS = {
  o: { type: 'string', short: 'o', multiple: true },
  foreground: { type: 'boolean', short: 'f' },
  debug: { type: 'boolean', short: 'd' },
  'log-file': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' }
} as const

interface MountArgs {
  source: string | undefined
  merged: string | undefined
  o: string[]
  foreground: boolean
  debug: boolean
  logFile: string | undefined
  logLevel: LogLevel
}

async function mountCommand (a: MountArgs, argv: string[]): Promise<number> {
  if (a.merged === undefined) throw new Error('missing MERGED (the mountpoint)')
  if (!a.foreground) return detachDaemon(argv)
  const { parseMountOptions } = await import('../mount-config/mount-options.js')
  const options = parseMountOptions(a.o)
  const merged = path.resolve(a.merged)
  // Started by detachDaemon: stdout is /dev/null, so without --log-file the log goes nowhere.
  const detached = process.env[READY_FD_ENV] !== undefined
  const { makeLogger, silentLogger } = await import('./log.js')
  const log = detached && a.logFile === undefined ? silentLogger() : await makeLogger(a.debug ? 'debug' : a.logLevel, a.logFile)
  const { runDaemon } = await import('./daemon.js')
  return runDaemon({ merged, source: a.source ?? 'overlayts', mount: options, log, traceOps: a.debug, ready: detached ? reportReady : undefined })
}

/**
 * The layer tools (src/layers), `overlayts TOOL ...`: each reads its own
 * arguments (src/cli/stack-args.ts) and is loaded only when asked for.
 */
const LAYER_TOOLS: Record<string, () => Promise<(argv: string[]) => Promise<number>>> = {
  diff: async () => (await import('./diff-command.js')).diffCommand,
  layers: async () => (await import('./layers-command.js')).layersCommand,
  which: async () => (await import('./which-command.js')).whichCommand,
  commit: async () => (await import('./commit-command.js')).commitCommand,
  unpack: async () => (await import('./unpack-command.js')).unpackCommand
}

async function command (argv: string[]): Promise<number> {
  const verb0 = argv[0]
  if (verb0 !== undefined && Object.hasOwn(LAYER_TOOLS, verb0)) return (await LAYER_TOOLS[verb0]!())(argv.slice(1))
  const { values, positionals } = parseArgs({ args: argv, options: FLAGS, allowPositionals: true, strict: true })
  if (values.help === true) {
    process.stdout.write(USAGE)
    return 0
  }
  const level = values['log-level'] ?? 'info'
  if (!(LEVELS as readonly string[]).includes(level)) throw new Error(`--log-level is one of ${LEVELS.join(', ')}, not ${level}`)
  const o = values.o ?? []
  const [verb, ...rest] = positionals
  const tooMany = (n: number): void => { if (rest.length > n) throw new Error(`unexpected argument: ${rest[n]!}`) }
  if (verb === 'umount') {
    tooMany(1)
    if (rest[0] === undefined) throw new Error('usage: overlayts umount MERGED')
    const { umount } = await import('./umount.js')
    return umount(path.resolve(rest[0]))
  }
  if (verb === 'index') {
    tooMany(1)
    const action = rest[0]
    if (action !== 'build' && action !== 'verify' && action !== 'drop') throw new Error('usage: overlayts index build|verify|drop -o lowerdir=...,workdir=W')
    const { parseMountOptions } = await import('../mount-config/mount-options.js')
    const { indexCommand } = await import('./index-command.js')
    return indexCommand(action, parseMountOptions(o))
  }
  // `mount [source] merged`, or the bare shapes `-o OPTS merged` and `source merged -o OPTS`.
  const operands = verb === 'mount' ? rest : positionals
  if (operands.length > 2) throw new Error(`unexpected argument: ${operands[2]!}`)
  const [source, merged] = operands.length === 2 ? operands : [undefined, operands[0]]
  if (merged === undefined) {
    throw new Error(verb === 'mount' ? 'missing MERGED (the mountpoint)' : 'usage: overlayts mount -o lowerdir=...[,upperdir=...,workdir=...] MERGED')
  }
  return mountCommand({ source, merged, o, foreground: values.foreground === true, debug: values.debug === true, logFile: values['log-file'], logLevel: level as LogLevel }, argv)
}

export async function main (argv: string[]): Promise<number> {
  try {
    return await command(argv)
  } catch (e) {
    // A detached daemon's stderr goes nowhere: tell the waiting parent instead.
    if (process.env[READY_FD_ENV]) reportReady(e as Error)
    process.stderr.write(`overlayts: ${(e as Error).message}\n`)
    return 1
  }
}
