/**
 * The command-line shape every layer tool shares (src/layers):
 *
 *   overlayts TOOL [MERGED] [-o lowerdir=A:B,upperdir=U[,workdir=W]] [--json] [TOOL'S OWN FLAGS]
 *
 * MERGED, a live overlayts or kernel overlayfs mountpoint, or -o, the layers
 * themselves with the mount's option syntax (one of the two). A tool is a
 * function of its arguments (after the verb), registered in main.ts's
 * LAYER_TOOLS; it reads them with
 *
 *   const { values, positionals } = parseArgs({ args: argv, options: { ...STACK_FLAGS, ...ownFlags }, allowPositionals: true })
 *   if (values.help === true) { print its help; return 0 }
 *   const src = await openToolStack(stackArgsOf(values, positionals[0]))
 *
 * openToolStack shows a progress line on a terminal while an index is built.
 */
import type { OpenOptions, StackRequest, StackSource } from '../layers/stack-source.js'
import { OptionError } from '../mount-config/mount-options.js'
import { progressLine } from './progress.js'

export interface StackArgs {
  readonly merged?: string | undefined
  readonly o?: readonly string[] | undefined
  readonly json: boolean
}

/** The flags every layer tool takes (node:util parseArgs options). */
export const STACK_FLAGS = {
  o: { type: 'string', short: 'o', multiple: true },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' }
} as const

export function stackArgsOf (values: { o?: string[] | undefined, json?: boolean | undefined }, merged: string | undefined): StackArgs {
  return { merged, o: values.o, json: values.json === true }
}

/** MERGED or -o, exactly one. */
export function stackRequestOf (a: StackArgs): StackRequest {
  const options = a.o === undefined || a.o.length === 0 ? undefined : a.o
  if (options !== undefined && a.merged !== undefined) throw new OptionError('give MERGED or -o, not both')
  if (options !== undefined) return { options }
  if (a.merged !== undefined) return { merged: a.merged }
  throw new OptionError('give a mountpoint MERGED, or the layers with -o lowerdir=...[,upperdir=...]')
}

/** Opens the stack a tool was given, with a progress line (on a terminal) if an index gets built. */
export async function openToolStack (a: StackArgs, opts: Pick<OpenOptions, 'index'> = {}): Promise<StackSource> {
  const { openStackSource } = await import('../layers/stack-source.js')
  const progress = progressLine()
  let started = false
  try {
    return openStackSource(stackRequestOf(a), {
      ...opts,
      onIndexProgress: (n) => {
        if (!started) { progress.phase('building the lookup index', 0); started = true }
        progress.update(n)
      }
    })
  } finally {
    progress.stop()
  }
}
