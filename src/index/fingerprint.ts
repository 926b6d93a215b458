/**
 * Identity and fingerprint of a stack of lower layers.
 *
 * identity: each layer's path, device and root inode, in order: a layer
 * added, removed, replaced or reordered changes it.
 * fingerprint: a hash over every directory of every layer (path, inode,
 * ctime, mtime). Adding, removing or renaming an entry anywhere changes its
 * directory's mtime and ctime, and so do changes to a directory's own
 * xattrs (opaque, redirect): a layer changed in place between mounts gets a
 * different fingerprint. Files are not hashed: the index never serves a
 * file's attributes, it re-reads them (one lstat) on every lookup, and
 * notices there when a file is gone or changed type.
 */
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import type { Layer } from '../overlay/layers.js'

export const SCHEMA_VERSION = 2

export function stackIdentity (lowers: readonly Layer[]): string {
  const h = createHash('sha256')
  h.update(`overlayts-index v${SCHEMA_VERSION}\n`)
  for (const l of lowers) h.update(`${l.root}\0${l.dev}\0${l.ino}\n`)
  return h.digest('hex')
}

export function stackFingerprint (lowers: readonly Layer[]): string {
  const h = createHash('sha256')
  for (const l of lowers) {
    h.update(`layer ${l.index}\n`)
    const walk = (rel: string, phys: string): void => {
      const st = fs.lstatSync(phys, { bigint: true })
      h.update(`${rel}\0${st.ino}\0${st.ctimeNs}\0${st.mtimeNs}\n`)
      const entries = fs.readdirSync(phys, { withFileTypes: true })
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      for (const e of entries) {
        if (e.isDirectory()) walk(rel === '' ? e.name : rel + '/' + e.name, phys + '/' + e.name)
      }
    }
    walk('', l.root)
  }
  return h.digest('hex')
}
