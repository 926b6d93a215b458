/**
 * The command-line shape every layer tool shares (src/layers):
 *
 *   overlayts TOOL [MERGED] [-o lowerdir=A:B,upperdir=U[,workdir=W]] [--json]
 *
 * MERGED, a live overlayts or kernel overlayfs mountpoint, or -o, the layers
 * themselves with the mount's option syntax (one of the two). A new tool
 * registers itself in main.ts as:
 *
 *   .command('TOOL [merged]', 'what it does', (y) => withStackArgs(y),
 *     (a) => run(import('./TOOL-command.js').then(({ toolCommand }) => toolCommand(a as unknown as StackArgs))))
 *
 * and opens the stack with openToolStack(a), which shows a progress line on
 * a terminal while an index is built.
 */
import type { Argv } from 'yargs'
import type { OpenOptions, StackRequest, StackSource } from '../layers/stack-source.js'
import { OptionError } from './mount-options.js'
import { progressLine } from './progress.js'

export interface StackArgs {
  merged?: string | undefined
  o?: string | string[] | undefined
  json: boolean
}

export function withStackArgs<T> (y: Argv<T>) {
  return y
    .positional('merged', { type: 'string', describe: 'a live overlay mountpoint (overlayts or kernel overlayfs); or give -o' })
    .option('o', { type: 'string', describe: 'the layers, as mount options: lowerdir=L1:L2[,upperdir=U][,workdir=W][,whiteouts=auto|kernel|oci][,index=PATH|off]' })
    .option('json', { type: 'boolean', default: false, describe: 'one JSON document on stdout, for scripts' })
}

/** MERGED or -o, exactly one. */
export function stackRequestOf (a: { merged?: string | undefined, o?: string | string[] | undefined }): StackRequest {
  const options = a.o === undefined ? undefined : Array.isArray(a.o) ? a.o : [a.o]
  if (options !== undefined && a.merged !== undefined) throw new OptionError('give MERGED or -o, not both')
  if (options !== undefined) return { options }
  if (a.merged !== undefined) return { merged: a.merged }
  throw new OptionError('give a mountpoint MERGED, or the layers with -o lowerdir=...[,upperdir=...]')
}

/** Opens the stack a tool was given, with a progress line (on a terminal) if an index gets built. */
export async function openToolStack (a: StackArgs, opts: OpenOptions = {}): Promise<StackSource> {
  const { openStackSource } = await import('../layers/stack-source.js')
  const progress = progressLine()
  let started = false
  try {
    return openStackSource(stackRequestOf(a), {
      ...opts,
      onIndexProgress: (n) => {
        if (!started) { progress.phase('building the lookup index', 0); started = true }
        progress.update(n)
        opts.onIndexProgress?.(n)
      }
    })
  } finally {
    progress.stop()
  }
}
