/**
 * The node table: FUSE node ids on one side, merged paths on the other.
 *
 * The kernel names every object by a node id it got from a LOOKUP (or a
 * create, or a READDIRPLUS entry) and counts its lookups; the overlay core
 * works on merged paths. A node records the names it is known by, each as
 * (parent node, name), so a path is found by walking up, and renaming a
 * directory renames everything below it without touching the children.
 *
 * One object, one node: the names of a file hardlinked in the upper layer
 * (the core treats them as one object: one inode, one set of attributes,
 * one page cache) share one node, found by inode number. Every other node is
 * keyed by its name alone. In particular two lower names of a lower hardlink
 * get two nodes: the kernel's overlayfs treats them as two objects, which a
 * copy-up separates (the copy gets its own inode number).
 *
 * A node id names one object for the whole mount (an id comes back only
 * for the object it named), so the generation is always 0.
 *
 * A file handle (EXPORT_SUPPORT: open_by_handle_at, an NFS export) names a
 * node id, and may outlive the kernel's lookups of it: the table remembers
 * where each forgotten node was (its path and inode number; the most recent
 * FORGOTTEN_MAX of them), and gives the id back when that object is looked
 * up there again, by name or by the handle (`revive`).
 */
import type { Attr } from '../../overlay/overlay.js'
import { ROOT_NODE_ID } from './protocol.js'

const S_IFMT = 0o170000
const S_IFDIR = 0o040000

export interface Link {
  readonly parent: KNode
  readonly name: string
}

export class KNode {
  /** Lookups the kernel holds on this node (FORGET gives them back). */
  nlookup = 0
  /** The names it is known by; the first is the one used for operations. */
  links: Link[] = []
  /** Open file handles on this node (a node with no name works through them). */
  readonly fhs = new Set<number>()
  /** The last attributes answered: what an object with no name left still shows. */
  attr: Attr | undefined
  /**
   * Retired (see NodeTable.retire): its object lives on under a new node,
   * which gets every change made through the name, so the kernel must not
   * cache this one's attributes.
   */
  retired = false

  constructor (readonly id: number, public ino: bigint, public type: number, public shared: boolean) {}

  get isDir (): boolean { return this.type === S_IFDIR }
}

function key (parent: KNode, name: string): string {
  return parent.id + '/' + name
}

/** Where a forgotten node was: what a file handle naming it is checked against. */
export interface Forgotten {
  readonly path: string
  readonly ino: bigint
  readonly type: number
}

/** Forgotten nodes remembered for file handles (about 100 bytes each). */
export const FORGOTTEN_MAX = 65536

export class NodeTable {
  readonly root: KNode
  /** Forgotten nodes by id, oldest first, and by path. */
  private readonly forgotten = new Map<number, Forgotten>()
  private readonly forgottenAt = new Map<string, number>()
  private readonly byId = new Map<number, KNode>()
  private readonly byName = new Map<string, KNode>()
  /** Upper objects with several names, by inode number. */
  private readonly byIno = new Map<bigint, KNode>()
  private nextId = ROOT_NODE_ID + 1

  /**
   * `remembers` says whether forgotten nodes are worth remembering: only when
   * the kernel can send file handles (EXPORT_SUPPORT). Otherwise a forget
   * builds no path and a lookup looks for no forgotten id.
   */
  constructor (private readonly remembers: () => boolean = () => true) {
    this.root = new KNode(ROOT_NODE_ID, 0n, S_IFDIR, false)
    this.root.nlookup = 1
    this.byId.set(ROOT_NODE_ID, this.root)
  }

  get size (): number { return this.byId.size }

  get (id: number): KNode | undefined { return this.byId.get(id) }

  /** The node known as `name` in `parent`, if the kernel holds one. */
  child (parent: KNode, name: string): KNode | undefined { return this.byName.get(key(parent, name)) }

  /** The merged path of a node ('' for the root); undefined once it has no name. */
  path (node: KNode): string | undefined {
    if (node === this.root) return ''
    const link = node.links[0]
    if (link === undefined) return undefined
    const parent = this.path(link.parent)
    if (parent === undefined) return undefined
    return parent === '' ? link.name : parent + '/' + link.name
  }

  /**
   * The node for `name` in `parent`, whose attributes are `attr`, with one
   * more lookup counted. `shared` says the object may have other names that
   * are the same object (an upper non-directory with nlink > 1).
   */
  lookup (parent: KNode, name: string, attr: Attr, shared: boolean): KNode {
    const type = attr.mode & S_IFMT
    const k = key(parent, name)
    let node = this.byName.get(k)
    if (node !== undefined && node.type !== type) {
      // The name now holds another kind of object: the old node keeps only its other names.
      this.dropLink(node, parent, name)
      node = undefined
    }
    if (node === undefined && shared && type !== S_IFDIR) {
      const other = this.byIno.get(attr.ino)
      if (other !== undefined && other.type === type) {
        node = other
        node.links.push({ parent, name })
        this.byName.set(k, node)
      }
    }
    if (node === undefined) {
      node = new KNode(this.forgottenId(parent, name, attr) ?? this.nextId++, attr.ino, type, false)
      node.links.push({ parent, name })
      this.byId.set(node.id, node)
      this.byName.set(k, node)
    }
    if (shared && type !== S_IFDIR) this.share(node, attr.ino)
    else if (node.ino !== attr.ino) this.unshare(node)
    node.ino = attr.ino
    node.attr = attr
    node.nlookup++
    return node
  }

  /** Where forgotten node `id` was, if remembered. */
  remembered (id: number): Forgotten | undefined { return this.forgotten.get(id) }

  /**
   * The id of the forgotten node last seen at `name` in `parent`, if it was
   * this object (inode number and type): a file handle naming it keeps
   * working after the kernel looked the name up again.
   */
  private forgottenId (parent: KNode, name: string, attr: Attr): number | undefined {
    if (this.forgottenAt.size === 0) return undefined
    const dir = this.path(parent)
    if (dir === undefined) return undefined
    const id = this.forgottenAt.get(dir === '' ? name : dir + '/' + name)
    const was = id === undefined ? undefined : this.forgotten.get(id)
    if (was === undefined || was.ino !== attr.ino || was.type !== (attr.mode & S_IFMT)) return undefined
    this.unremember(id!)
    return id
  }

  private unremember (id: number): void {
    const f = this.forgotten.get(id)
    if (f === undefined) return
    this.forgotten.delete(id)
    if (this.forgottenAt.get(f.path) === id) this.forgottenAt.delete(f.path)
  }

  /**
   * Forgotten node `id` back as `name` in `parent` (the object there now,
   * whose attributes are `attr`, checked by the caller to be the one it
   * was), with one lookup. Undefined when another node answers for that
   * name or that object: the kernel would then hold two ids for one object.
   */
  revive (id: number, parent: KNode, name: string, attr: Attr, shared: boolean): KNode | undefined {
    const type = attr.mode & S_IFMT
    if (!this.forgotten.has(id) || this.byName.has(key(parent, name))) return undefined
    if (shared && type !== S_IFDIR && this.byIno.has(attr.ino)) return undefined
    this.unremember(id)
    const node = new KNode(id, attr.ino, type, false)
    node.links.push({ parent, name })
    this.byId.set(id, node)
    this.byName.set(key(parent, name), node)
    if (shared && type !== S_IFDIR) this.share(node, attr.ino)
    node.attr = attr
    node.nlookup = 1
    return node
  }

  /**
   * The node for `name` in `parent`, made without a lookup if there is none:
   * a directory above a revived node, which the kernel has not looked up
   * (it counts a lookup when it asks for "..", or for the name). A forgotten
   * node of that directory gets its id back, as in any lookup.
   */
  attach (parent: KNode, name: string, attr: Attr): KNode {
    const node = this.lookup(parent, name, attr, false)
    node.nlookup--
    return node
  }

  /** A node for an object with no name (O_TMPFILE), with one lookup. */
  anonymous (attr: Attr): KNode {
    const node = new KNode(this.nextId++, attr.ino, attr.mode & S_IFMT, false)
    node.attr = attr
    node.nlookup = 1
    this.byId.set(node.id, node)
    return node
  }

  /**
   * The node stops answering for its names: the next lookup of any of them
   * makes a new node. The kernel keeps the old one for what it has open.
   */
  retire (node: KNode): void {
    node.retired = true
    for (const l of [...node.links]) this.dropLink(node, l.parent, l.name)
  }

  /** The kernel gives back `n` lookups; at zero the node is gone. */
  forget (id: number, n: number): void {
    const node = this.byId.get(id)
    if (node === undefined || node === this.root) return
    node.nlookup -= n
    if (node.nlookup > 0) return
    const path = this.remembers() ? this.path(node) : undefined
    if (path !== undefined) {
      this.forgotten.set(id, { path, ino: node.ino, type: node.type })
      this.forgottenAt.set(path, id)
      if (this.forgotten.size > FORGOTTEN_MAX) this.unremember(this.forgotten.keys().next().value!)
    }
    this.byId.delete(id)
    for (const l of node.links) {
      const k = key(l.parent, l.name)
      if (this.byName.get(k) === node) this.byName.delete(k)
    }
    node.links = []
    this.unshare(node)
  }

  /** `name` in `parent` was removed. */
  unlinked (parent: KNode, name: string): void {
    const node = this.byName.get(key(parent, name))
    if (node !== undefined) this.dropLink(node, parent, name)
  }

  /** A new name for an existing node (link(2)). */
  linked (node: KNode, parent: KNode, name: string, attr: Attr): void {
    this.unlinked(parent, name)
    node.links.push({ parent, name })
    this.byName.set(key(parent, name), node)
    node.attr = attr
    if (!node.isDir) this.share(node, attr.ino)
  }

  /** `from` in `fromParent` is now `to` in `toParent` (whatever stood there is gone). */
  renamed (fromParent: KNode, from: string, toParent: KNode, to: string): void {
    const node = this.byName.get(key(fromParent, from))
    this.unlinked(toParent, to)
    if (node === undefined) return
    this.byName.delete(key(fromParent, from))
    node.links = node.links.map((l) => l.parent === fromParent && l.name === from ? { parent: toParent, name: to } : l)
    this.byName.set(key(toParent, to), node)
  }

  /** The objects at two names swapped places (RENAME_EXCHANGE). */
  exchanged (aParent: KNode, a: string, bParent: KNode, b: string): void {
    const na = this.byName.get(key(aParent, a))
    const nb = this.byName.get(key(bParent, b))
    this.byName.delete(key(aParent, a))
    this.byName.delete(key(bParent, b))
    const move = (n: KNode | undefined, fp: KNode, f: string, tp: KNode, t: string): void => {
      if (n === undefined) return
      n.links = n.links.map((l) => l.parent === fp && l.name === f ? { parent: tp, name: t } : l)
      this.byName.set(key(tp, t), n)
    }
    move(na, aParent, a, bParent, b)
    move(nb, bParent, b, aParent, a)
  }

  private dropLink (node: KNode, parent: KNode, name: string): void {
    node.links = node.links.filter((l) => !(l.parent === parent && l.name === name))
    const k = key(parent, name)
    if (this.byName.get(k) === node) this.byName.delete(k)
    // A node without a name can no longer be found by its inode number:
    // that number may come back on a new object.
    if (node.links.length === 0) this.unshare(node)
  }

  private share (node: KNode, ino: bigint): void {
    if (node.shared && node.ino !== ino) this.unshare(node)
    node.shared = true
    node.ino = ino
    this.byIno.set(ino, node)
  }

  private unshare (node: KNode): void {
    if (!node.shared) return
    if (this.byIno.get(node.ino) === node) this.byIno.delete(node.ino)
    node.shared = false
  }
}
