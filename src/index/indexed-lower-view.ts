/**
 * The lower view answered from the index: one primary-key lookup, whatever
 * the number of layers, plus one lstat of the one physical object it names
 * (so attributes are always the file's own, never a stored copy). Listings
 * need no stat at all: type and inode number are in the rows.
 *
 * If that lstat finds the object gone or of another type, a layer was changed
 * behind the index's back: the answer is taken from a scan instead and the
 * owner is told, so a stale index never answers.
 */
import Database from 'better-sqlite3'
import type { Layer } from '../overlay/layers.js'
import { physical } from '../overlay/layers.js'
import { ListingMemo } from '../overlay/lower-view.js'
import type { ListedEntry, LowerEntry, LowerView } from '../overlay/lower-view.js'
import { sys } from '../overlay/sys/fs.js'
import { decodeDirs } from './schema.js'

const S_IFMT = 0o170000

interface Row { path: string, layer: number, rel: string | null, type: number, dirs: string | null }
interface ListRow { name: string, type: bigint, dev: bigint, ino: bigint }

export class IndexedLowerView implements LowerView {
  private readonly db: Database.Database
  private readonly getStmt: Database.Statement<[string], Row>
  private readonly childrenStmt: Database.Statement<[string], Row & { name: string }>
  private readonly listingStmt: Database.Statement<[string], ListRow>
  private readonly listings = new ListingMemo()

  constructor (dbPath: string, private readonly lowers: readonly Layer[], private readonly fallback: LowerView, private readonly onStale: (path: string) => void) {
    this.db = new Database(dbPath, { readonly: true, fileMustExist: true })
    // Nothing writes the index while it serves (it is built before, and a
    // stale one is abandoned, not rewritten): keep the read lock instead of
    // taking it per query, and read pages through a mapping, not read(2).
    // A lookup then costs a few µs instead of ~10 (locks, journal checks).
    this.db.pragma('locking_mode = EXCLUSIVE')
    this.db.pragma('mmap_size = 1073741824')
    this.getStmt = this.db.prepare('SELECT path, layer, rel, type, dirs FROM entries WHERE path = ?')
    this.childrenStmt = this.db.prepare('SELECT path, name, layer, rel, type, dirs FROM entries WHERE parent = ? AND path != \'\'')
    this.listingStmt = this.db.prepare('SELECT name, type, dev, ino FROM entries WHERE parent = ? AND path != \'\'')
    this.listingStmt.safeIntegers(true)
  }

  close (): void { this.db.close() }

  lookup (rel: string): LowerEntry | null {
    const row = this.getStmt.get(rel)
    if (row === undefined) return null
    return this.entryOf(row) ?? this.fallback.lookup(rel)
  }

  list (rel: string): Map<string, LowerEntry> {
    const out = new Map<string, LowerEntry>()
    for (const row of this.childrenStmt.all(rel)) {
      const e = this.entryOf(row)
      if (e === undefined) return this.fallback.list(rel)
      out.set(row.name, e)
    }
    return out
  }

  listing (rel: string): Map<string, ListedEntry> {
    return this.listings.get(rel, () => {
      const out = new Map<string, ListedEntry>()
      for (const row of this.listingStmt.all(rel)) {
        out.set(row.name, { type: Number(row.type), dev: BigInt(row.dev), ino: BigInt(row.ino) })
      }
      return out
    })
  }

  private entryOf (row: Row): LowerEntry | undefined {
    const layer = this.lowers[row.layer]
    const rel = row.rel ?? row.path
    const st = layer === undefined ? undefined : sys.lstat(physical(layer, rel))
    if (st === undefined || (Number(st.mode) & S_IFMT) !== row.type) {
      this.onStale(row.path)
      return undefined
    }
    return { layer: row.layer, rel, stat: st, dirs: row.dirs === null ? undefined : decodeDirs(row.dirs) }
  }
}
