// The kernel transport's node table: paths from (parent, name) links, one
// node per upper object with several names, lookup counting, renames of
// directories moving everything below, names that change kind.
import t from 'tap'
import { NodeTable } from '../../src/fuse/kernel/nodes.js'
import type { Attr } from '../../src/overlay/overlay.js'

const S_IFDIR = 0o040000
const S_IFREG = 0o100000

function attr (ino: number, mode: number, nlink = 1): Attr {
  return { mode, uid: 0, gid: 0, size: 0n, nlink, ino: BigInt(ino), rdev: 0n, blksize: 4096, blocks: 0n, atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n }
}

t.test('paths walk up the links; a renamed directory moves its children', async (t) => {
  const nt = new NodeTable()
  const d = nt.lookup(nt.root, 'd', attr(10, S_IFDIR), false)
  const f = nt.lookup(d, 'f', attr(11, S_IFREG), false)
  t.equal(nt.path(nt.root), '')
  t.equal(nt.path(f), 'd/f')
  nt.renamed(nt.root, 'd', nt.root, 'e')
  t.equal(nt.path(f), 'e/f', 'the child follows its parent')
  t.equal(nt.child(nt.root, 'e'), d)
  t.equal(nt.child(nt.root, 'd'), undefined)
})

t.test('the same name looked up twice is one node with two lookups; forget drops it', async (t) => {
  const nt = new NodeTable()
  const a = nt.lookup(nt.root, 'a', attr(5, S_IFREG), false)
  const b = nt.lookup(nt.root, 'a', attr(5, S_IFREG), false)
  t.equal(a, b)
  t.equal(a.nlookup, 2)
  nt.forget(a.id, 1)
  t.equal(nt.get(a.id), a, 'one lookup left')
  nt.forget(a.id, 1)
  t.equal(nt.get(a.id), undefined, 'gone at zero')
  t.not(nt.lookup(nt.root, 'a', attr(6, S_IFREG), false).id, a.id, 'another object at the name: another id')
})

t.test('a forgotten node keeps its id for its object: by name, or revived for a file handle', async (t) => {
  const nt = new NodeTable()
  const d = nt.lookup(nt.root, 'd', attr(10, S_IFDIR), false)
  const f = nt.lookup(d, 'f', attr(11, S_IFREG), false)
  nt.forget(f.id, 1)
  nt.forget(d.id, 1)
  t.same(nt.remembered(f.id), { path: 'd/f', ino: 11n, type: S_IFREG }, 'where f was')
  // Looked up again by name, the same objects: their old ids.
  const d2 = nt.lookup(nt.root, 'd', attr(10, S_IFDIR), false)
  t.equal(d2.id, d.id, 'the directory gets its id back')
  t.equal(nt.remembered(d.id), undefined, 'and is no longer a forgotten one')
  // f: revived through its handle under the live d.
  const f2 = nt.revive(f.id, d2, 'f', attr(11, S_IFREG), false)
  t.equal(f2?.id, f.id, 'revived under its id')
  t.equal(f2?.nlookup, 1, 'with the lookup the kernel counts')
  t.equal(nt.path(f2!), 'd/f')
  t.equal(nt.revive(f.id, d2, 'f', attr(11, S_IFREG), false), undefined, 'only once')
  // A name already held by another node is not taken over.
  nt.forget(f2!.id, 1)
  const other = nt.lookup(d2, 'f', attr(12, S_IFREG), false)
  t.not(other.id, f.id, 'another object at the path gets a new id')
  t.equal(nt.revive(f.id, d2, 'f', attr(11, S_IFREG), false), undefined, 'and the old id does not take the name over')
})

t.test('without file handles (no EXPORT_SUPPORT) a forgotten node is not remembered', async (t) => {
  const nt = new NodeTable(() => false)
  const f = nt.lookup(nt.root, 'f', attr(11, S_IFREG), false)
  nt.forget(f.id, 1)
  t.equal(nt.remembered(f.id), undefined, 'nothing kept')
  t.not(nt.lookup(nt.root, 'f', attr(11, S_IFREG), false).id, f.id, 'the same object looked up again: a new id')
})

t.test('attach: a directory above a revived node, without a lookup', async (t) => {
  const nt = new NodeTable()
  const d = nt.attach(nt.root, 'd', attr(10, S_IFDIR))
  t.equal(d.nlookup, 0, 'the kernel has not looked it up')
  t.equal(nt.lookup(nt.root, 'd', attr(10, S_IFDIR), false), d, 'a later lookup finds it')
  t.equal(d.nlookup, 1)
  nt.forget(d.id, 1)
  const again = nt.attach(nt.root, 'd', attr(10, S_IFDIR))
  t.equal(again.id, d.id, 'attached again: its forgotten id back')
  t.equal(again.nlookup, 0)
})

t.test('upper names of one object share a node; lower hardlinks do not', async (t) => {
  const nt = new NodeTable()
  const h1 = nt.lookup(nt.root, 'h1', attr(7, S_IFREG, 2), true)
  const h2 = nt.lookup(nt.root, 'h2', attr(7, S_IFREG, 2), true)
  t.equal(h1, h2, 'one node for both upper names')
  t.equal(h1.links.length, 2)
  nt.unlinked(nt.root, 'h1')
  t.equal(nt.path(h2), 'h2', 'the other name still leads to it')
  const l1 = nt.lookup(nt.root, 'l1', attr(9, S_IFREG, 2), false)
  const l2 = nt.lookup(nt.root, 'l2', attr(9, S_IFREG, 2), false)
  t.not(l1, l2, 'lower hardlinks: a node per name')
})

t.test('link adds a name; a name that now holds another kind of object gets a new node', async (t) => {
  const nt = new NodeTable()
  const f = nt.lookup(nt.root, 'f', attr(3, S_IFREG), false)
  nt.linked(f, nt.root, 'g', attr(3, S_IFREG, 2))
  t.equal(nt.child(nt.root, 'g'), f)
  t.equal(nt.lookup(nt.root, 'g', attr(3, S_IFREG, 2), true), f)
  const d = nt.lookup(nt.root, 'f', attr(4, S_IFDIR), false)
  t.not(d, f, 'f is a directory now')
  t.equal(nt.path(f), 'g', 'the file keeps its other name')
})

t.test('exchange swaps two names; retire makes the next lookup a new node', async (t) => {
  const nt = new NodeTable()
  const a = nt.lookup(nt.root, 'a', attr(1, S_IFREG), false)
  const b = nt.lookup(nt.root, 'b', attr(2, S_IFDIR), false)
  nt.exchanged(nt.root, 'a', nt.root, 'b')
  t.equal(nt.path(a), 'b')
  t.equal(nt.path(b), 'a')
  t.notOk(a.retired)
  nt.retire(a)
  t.equal(nt.path(a), undefined, 'no name left')
  t.ok(a.retired, 'marked retired: the kernel may cache none of its attributes')
  const successor = nt.lookup(nt.root, 'b', attr(1, S_IFREG), false)
  t.not(successor, a)
  t.notOk(successor.retired, 'the new node is not')
  const tmp = nt.anonymous(attr(42, S_IFREG, 0))
  t.equal(nt.path(tmp), undefined, 'an O_TMPFILE node has no path')
  t.equal(tmp.nlookup, 1)
})
