/**
 * Where a stack's lookup index lives: index=PATH, else workdir/overlayts-index.db;
 * none with index=off or no workdir. The result is an ordinary (UTF-8) string,
 * as SQLite takes it; the stack's workdir is a byte string, converted back.
 */
import * as path from 'node:path'
import { bytesToUtf8 } from '../overlay/bytes.js'
import type { LayerStack } from '../overlay/layers.js'
import type { MountOptions } from './mount-options.js'

export const INDEX_FILE = 'overlayts-index.db'

export function indexPath (opts: MountOptions, stack: LayerStack): string | undefined {
  return indexPathFor(opts.index, stack.workdir === undefined ? undefined : bytesToUtf8(stack.workdir))
}

export function indexPathFor (index: string | undefined, workdir: string | undefined): string | undefined {
  if (index === 'off') return undefined
  if (index !== undefined) return index
  return workdir === undefined ? undefined : path.join(workdir, INDEX_FILE)
}
