/**
 * Command line. Three shapes start the same daemon:
 *   overlayts mount [-f] -o lowerdir=..,upperdir=..,workdir=.. MERGED
 *   overlayts -o OPTS MERGED                     (as fuse-overlayfs)
 *   overlayts SOURCE MERGED -o OPTS              (as mount(8)'s FUSE helper calls it)
 * and `overlayts umount MERGED` ends it. Without -f the command returns once
 * the mount is live, leaving the daemon running detached.
 */
import * as path from 'node:path'
import yargs from 'yargs'
import type { Argv } from 'yargs'
import { detachDaemon, READY_FD_ENV, reportReady } from './detach.js'
import type { LogLevel } from './log.js'
import { OptionError, parseMountOptions } from './mount-options.js'

interface MountArgs {
  source?: string | undefined
  merged?: string | undefined
  o?: string | string[] | undefined
  f: boolean
  d: boolean
  logFile?: string | undefined
  logLevel: string
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']

function mountFlags<T> (y: Argv<T>) {
  return y
    .option('o', { type: 'string', describe: 'comma-separated options: lowerdir=L1:L2,upperdir=U,workdir=W,index=PATH|off,ro,...' })
    .option('f', { alias: 'foreground', type: 'boolean', default: false, describe: 'stay in the foreground' })
    .option('d', { alias: 'debug', type: 'boolean', default: false, describe: 'log every operation (implies -f unless detached with --log-file)' })
    .option('log-file', { type: 'string', describe: 'write the JSON log here (the detached daemon logs nowhere otherwise)' })
    .option('log-level', { type: 'string', choices: LEVELS, default: 'info' })
}

async function mountCommand (a: MountArgs): Promise<number> {
  if (a.merged === undefined) throw new OptionError('missing MERGED (the mountpoint)')
  const merged = path.resolve(a.merged)
  const source = a.source ?? 'overlayts'
  const options = parseMountOptions(a.o === undefined ? [] : Array.isArray(a.o) ? a.o : [a.o])
  const level = (a.d ? 'debug' : a.logLevel) as LogLevel
  if (!a.f) return detachDaemon(process.argv.slice(2))
  // Loaded only where needed: the detaching parent and umount start faster.
  const { makeLogger } = await import('./log.js')
  const { runDaemon } = await import('./daemon.js')
  const log = makeLogger(level, a.logFile)
  return runDaemon({ merged, source, mount: options, log, traceOps: a.d, ready: process.env[READY_FD_ENV] ? reportReady : undefined })
}

export async function main (argv: string[]): Promise<number> {
  let code = 0
  const run = (p: Promise<number>): Promise<void> => p.then((c) => { code = c })
  try {
    await yargs(argv)
      .scriptName('overlayts')
      .command('mount [source] <merged>', 'mount an overlay at MERGED', (y) => mountFlags(y)
        .positional('source', { type: 'string', describe: 'shown as the source in /proc/mounts' })
        .positional('merged', { type: 'string' }),
      (a) => run(mountCommand(a as unknown as MountArgs)))
      .command('umount <merged>', 'unmount MERGED and wait for its daemon to exit', (y) => y.positional('merged', { type: 'string', demandOption: true }),
        (a) => run(import('./umount.js').then(({ umount }) => umount(path.resolve(String(a.merged))))))
      .command('index <action>', 'build, verify or drop the lookup index of a layer stack', (y) => y
        .positional('action', { type: 'string', choices: ['build', 'verify', 'drop'], demandOption: true })
        .option('o', { type: 'string', describe: 'lowerdir=...,workdir=...[,index=PATH]' }),
      (a) => {
        const o = a.o as string | string[] | undefined
        const opts = parseMountOptions(o === undefined ? [] : Array.isArray(o) ? o : [o])
        return run(import('./index-command.js').then(({ indexCommand }) => indexCommand(String(a.action), opts)))
      })
      .command('$0 [source] [merged]', false, (y) => mountFlags(y)
        .positional('source', { type: 'string' })
        .positional('merged', { type: 'string' }),
      (a) => {
        const args = a as unknown as MountArgs
        // `overlayts -o OPTS MERGED`: the one positional is the mountpoint.
        if (args.merged === undefined && args.source !== undefined) { args.merged = args.source; args.source = undefined }
        if (args.merged === undefined) throw new OptionError('usage: overlayts mount -o lowerdir=...[,upperdir=...,workdir=...] MERGED')
        return run(mountCommand(args))
      })
      .strictOptions()
      .help()
      .version(false)
      .fail((msg, err) => { throw err ?? new OptionError(msg) })
      .parseAsync()
  } catch (e) {
    // A detached daemon's stderr goes nowhere: tell the waiting parent instead.
    if (process.env[READY_FD_ENV]) reportReady(e as Error)
    process.stderr.write(`overlayts: ${(e as Error).message}\n`)
    return code === 0 ? 1 : code
  }
  return code
}
