/**
 * A layer stack: the read-only lower layers (index 0 is the top) and, for a
 * writable mount, the upper layer and the work directory where entries are
 * built before they are renamed into upper.
 *
 * Each layer is identified by its root's device and inode, so the inode
 * numbers the mount reports can be made unique across layers that live on
 * different filesystems (see inode.ts).
 */
import * as path from 'node:path'
import type { WhiteoutForm } from './layer-form.js'
import type { XattrNamespace } from './markers.js'

export interface Layer {
  /** Absolute path of the layer root, a byte string (bytes.ts). */
  readonly root: string
  readonly role: 'upper' | 'lower'
  /** Position among the lowers (0 = top); -1 for the upper layer. */
  readonly index: number
  readonly dev: bigint
  readonly ino: bigint
  /**
   * Lowers: the form of the layer's whiteouts (see layer-form.ts). In `kernel`
   * form `.wh.*` names are plain names; `oci` (and, for a layer made without
   * a decision, undefined) reads `.wh.*` files as markers.
   */
  readonly whiteouts?: WhiteoutForm
  /**
   * Lowers: the namespace of the overlay xattrs read in it (markers.ts):
   * `trusted` (default) or `user`, as the kernel reads them without and with
   * its userxattr option.
   */
  readonly xattrs?: XattrNamespace
}

export interface LayerStack {
  readonly lowers: readonly Layer[]
  readonly upper: Layer | undefined
  /** workdir/work: the kernel's scratch directory, also ours. */
  readonly work: string | undefined
  /** The workdir the user named (it holds `work/` and, by default, the index). */
  readonly workdir: string | undefined
}

/** Physical path of a merged-relative path ('' is the root) inside a layer. */
export function physical (layer: Layer, rel: string): string {
  return rel === '' ? layer.root : layer.root + '/' + rel
}

export function joinRel (parent: string, name: string): string {
  return parent === '' ? name : parent + '/' + name
}

export function parentOf (rel: string): string {
  const i = rel.lastIndexOf('/')
  return i < 0 ? '' : rel.slice(0, i)
}

export function baseOf (rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1)
}

/** True if `inner` is `outer` or lies below it (both absolute, normalized). */
export function isWithin (inner: string, outer: string): boolean {
  const rel = path.relative(outer, inner)
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))
}
