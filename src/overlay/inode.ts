/**
 * Inode numbers the mount reports.
 *
 * - An object keeps one number for its whole life: a lower object shows its
 *   own inode number, and so does its copy in upper after copy-up (the copy
 *   carries the lower's dev:ino in the origin provenance xattr (markers.ts), so the
 *   number survives renames and remounts).
 * - Except the copy of a lower hardlink (a non-directory with nlink > 1):
 *   copy-up separates it from its other names, which stay in the lower and
 *   keep the lower number, so it gets no origin and shows its upper inode's
 *   number (as the kernel without its index feature).
 * - Hardlinks made through the mount share the upper inode, hence the number.
 * - Two objects never share a number: when the layers span several
 *   filesystems, each filesystem gets a slot in the top bits (as the kernel's
 *   xino feature does), so equal inode numbers on two devices stay distinct.
 *   With one filesystem (the common case) the numbers are the real ones, as
 *   the kernel's overlayfs reports them.
 */
import type { Layer } from './layers.js'
import type { Stats } from './sys/fs.js'
import { sys } from './sys/fs.js'

const DEV_SHIFT = 48n
const INO_MASK = (1n << DEV_SHIFT) - 1n

export class InodeNumbers {
  private readonly devSlots = new Map<bigint, bigint>()
  private readonly origins = new Map<string, Origin | null>()
  private readonly single: boolean

  /** `originXattr`: the name of the provenance xattr in upper (its form's, markers.ts). */
  constructor (layers: readonly Layer[], private readonly originXattr: string) {
    for (const l of layers) {
      if (!this.devSlots.has(l.dev)) this.devSlots.set(l.dev, BigInt(this.devSlots.size))
    }
    this.single = this.devSlots.size <= 1
  }

  /** The mount's inode number for object `ino` on device `dev`. */
  number (dev: bigint, ino: bigint): bigint {
    if (this.single && this.devSlots.has(dev)) return ino
    let slot = this.devSlots.get(dev)
    if (slot === undefined) {
      slot = BigInt(this.devSlots.size)
      this.devSlots.set(dev, slot)
    }
    return (slot << DEV_SHIFT) | (ino & INO_MASK)
  }

  /**
   * The number for an entry in upper: its origin's if it was copied up.
   * The origin xattr is read once per inode version: setting it changes the
   * ctime, and so does anything that could reuse the inode number.
   */
  forUpper (phys: string, st: Stats): bigint {
    const key = `${st.dev}:${st.ino}:${st.ctimeNs}`
    let origin = this.origins.get(key)
    if (origin === undefined) {
      origin = readOrigin(phys, this.originXattr) ?? null
      if (this.origins.size >= 100_000) this.origins.clear()
      this.origins.set(key, origin)
    }
    return origin !== null ? this.number(origin.dev, origin.ino) : this.number(st.dev, st.ino)
  }
}

export interface Origin { dev: bigint, ino: bigint }

export function encodeOrigin (st: Stats): Buffer {
  return Buffer.from(`${st.dev}:${st.ino}`)
}

export function readOrigin (phys: string, originXattr: string): Origin | undefined {
  const v = sys.lgetxattr(phys, originXattr)
  if (v === undefined) return undefined
  const m = /^(\d+):(\d+)$/.exec(v.toString())
  return m ? { dev: BigInt(m[1]!), ino: BigInt(m[2]!) } : undefined
}
