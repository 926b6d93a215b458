/**
 * Identity and fingerprint of a stack of lower layers.
 *
 * identity: each layer's path, device, root inode and whiteout form, in
 * order: a layer added, removed, replaced or reordered, or read in another
 * form (`whiteouts=`, layer-form.ts), changes it.
 * fingerprint: a hash over every directory of every layer (path, inode,
 * ctime, mtime). Adding, removing or renaming an entry anywhere changes its
 * directory's mtime and ctime, and so do changes to a directory's own
 * xattrs (opaque, redirect): a layer changed in place between mounts gets a
 * different fingerprint. Files are not hashed: the index never serves a
 * file's attributes, it re-reads them (one lstat) on every lookup, and
 * notices there when a file is gone or changed type.
 *
 * Layer roots and names are byte strings (src/overlay/bytes.ts), hashed as
 * their bytes.
 */
import { createHash } from 'node:crypto'
import type { Layer } from '../overlay/layers.js'
import { sys } from '../overlay/sys/fs.js'

/** 3: paths stored as byte strings (one char per byte), not UTF-8 decoded. */
export const SCHEMA_VERSION = 3

export function stackIdentity (lowers: readonly Layer[]): string {
  const h = createHash('sha256')
  h.update(`overlayts-index v${SCHEMA_VERSION}\n`)
  for (const l of lowers) h.update(`${l.root}\0${l.dev}\0${l.ino}\n`, 'latin1')
  h.update(`whiteouts ${lowers.map((l) => l.whiteouts ?? 'oci').join(' ')}\n`)
  // The xattr namespace read (userxattr) changes the view; the default keeps older indexes valid.
  if (lowers.some((l) => l.xattrs === 'user')) h.update(`xattrs ${lowers.map((l) => l.xattrs ?? 'trusted').join(' ')}\n`)
  return h.digest('hex')
}

export function stackFingerprint (lowers: readonly Layer[]): string {
  const h = createHash('sha256')
  for (const l of lowers) {
    h.update(`layer ${l.index}\n`)
    const walk = (rel: string, phys: string): void => {
      // Through sys, so a directory deeper than PATH_MAX (with the layer root) is read too.
      const st = sys.lstat(phys)
      if (st === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, lstat '${phys}'`), { code: 'ENOENT', syscall: 'lstat' })
      h.update(`${rel}\0${st.ino}\0${st.ctimeNs}\0${st.mtimeNs}\n`, 'latin1')
      const dirs: string[] = []
      for (const e of sys.readdir(phys)) {
        if (e.isDirectory()) dirs.push(e.name)
      }
      dirs.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      for (const name of dirs) walk(rel === '' ? name : rel + '/' + name, phys + '/' + name)
    }
    walk('', l.root)
  }
  return h.digest('hex')
}
