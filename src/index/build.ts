/**
 * Building an index file: walk the merged lower view (the same ScanLowerView
 * the daemon uses without an index, so both give the same answers by
 * construction) and store every path. The database is written under a
 * temporary name, synced and renamed into place, so a reader, or a crash,
 * sees the old index or the new one, never half of one.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import Database from 'better-sqlite3'
import type { Layer } from '../overlay/layers.js'
import { joinRel } from '../overlay/layers.js'
import { displayPath } from '../overlay/bytes.js'
import { ScanLowerView } from '../overlay/lower-view.js'
import type { LowerEntry } from '../overlay/lower-view.js'
import { SCHEMA_VERSION, stackFingerprint, stackIdentity } from './fingerprint.js'
import { createSchema, encodeDirs, readMeta, writeMeta } from './schema.js'

const S_IFMT = 0o170000

export interface IndexStatus {
  readonly entries: number
  /** True when an existing index matched the layers and was kept. */
  readonly reused: boolean
}

/** Is the index at dbPath complete, and built from exactly these layers as they are now? */
export function indexMatches (dbPath: string, lowers: readonly Layer[]): { ok: boolean, entries: number, reason: string } {
  if (!fs.existsSync(dbPath)) return { ok: false, entries: 0, reason: 'no index yet' }
  let db: Database.Database | undefined
  try {
    db = new Database(dbPath, { readonly: true, fileMustExist: true })
    if (readMeta(db, 'schema') !== String(SCHEMA_VERSION)) return { ok: false, entries: 0, reason: 'other schema version' }
    if (readMeta(db, 'identity') !== stackIdentity(lowers)) return { ok: false, entries: 0, reason: 'layers differ (added, removed, replaced or reordered)' }
    if (readMeta(db, 'complete') !== '1') return { ok: false, entries: 0, reason: 'incomplete' }
    if (readMeta(db, 'fingerprint') !== stackFingerprint(lowers)) return { ok: false, entries: 0, reason: 'a layer changed since the index was built' }
    return { ok: true, entries: Number(readMeta(db, 'entries') ?? 0), reason: 'up to date' }
  } catch (e) {
    return { ok: false, entries: 0, reason: `unreadable (${(e as Error).message})` }
  } finally {
    db?.close()
  }
}

/** A process that is gone (its scratch index is garbage). */
function gone (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

/**
 * Removes the scratch files of builds that never finished (the daemon was
 * unmounted or killed mid-build): `<index>.tmp-<pid>` of pids no longer alive.
 */
function removeStaleScratch (dbPath: string): void {
  const dir = path.dirname(dbPath)
  const prefix = path.basename(dbPath) + '.tmp-'
  let names: string[]
  try {
    names = fs.readdirSync(dir)
  } catch { return }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue
    const pid = Number(n.slice(prefix.length))
    if (Number.isInteger(pid) && pid > 0 && gone(pid)) fs.rmSync(path.join(dir, n), { force: true })
  }
}

export function buildIndex (dbPath: string, lowers: readonly Layer[], onProgress?: (entries: number) => void): IndexStatus {
  const tmp = `${dbPath}.tmp-${process.pid}`
  removeStaleScratch(dbPath)
  fs.rmSync(tmp, { force: true })
  const fingerprint = stackFingerprint(lowers)
  const db = new Database(tmp)
  let count = 0
  try {
    // A scratch file until renamed: no journal needed, one fsync at the end.
    db.pragma('journal_mode = OFF')
    db.pragma('synchronous = OFF')
    createSchema(db)
    const insert = db.prepare('INSERT INTO entries (path, parent, name, layer, rel, type, dev, ino, dirs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
    const batch: Array<[string, string, string, LowerEntry]> = []
    const flush = db.transaction(() => {
      for (const [p, parent, name, e] of batch) {
        insert.run(p, parent, name, e.layer, e.rel === p ? null : e.rel, Number(e.stat.mode) & S_IFMT, e.stat.dev, e.stat.ino, e.dirs === undefined ? null : encodeDirs(e.dirs))
      }
      batch.length = 0
    })
    const view = new ScanLowerView(lowers, 100_000)
    const root = view.lookup('')
    if (root !== null) {
      batch.push(['', '', '', root])
      const stack: string[] = ['']
      while (stack.length > 0) {
        const dir = stack.pop()!
        for (const [name, e] of view.list(dir)) {
          const p = joinRel(dir, name)
          batch.push([p, dir, name, e])
          if (e.dirs !== undefined) stack.push(p)
          if (batch.length >= 5000) {
            count += batch.length
            flush()
            onProgress?.(count)
          }
        }
      }
    }
    count += batch.length
    flush()
    writeMeta(db, 'schema', String(SCHEMA_VERSION))
    writeMeta(db, 'identity', stackIdentity(lowers))
    writeMeta(db, 'fingerprint', fingerprint)
    writeMeta(db, 'entries', String(count))
    writeMeta(db, 'layers', JSON.stringify(lowers.map((l) => displayPath(l.root))))
    writeMeta(db, 'complete', '1')
  } catch (e) {
    db.close()
    fs.rmSync(tmp, { force: true })
    throw e
  }
  db.close()
  const fd = fs.openSync(tmp, 'r')
  fs.fsyncSync(fd)
  fs.closeSync(fd)
  fs.renameSync(tmp, dbPath)
  const dfd = fs.openSync(path.dirname(dbPath), 'r')
  fs.fsyncSync(dfd)
  fs.closeSync(dfd)
  onProgress?.(count)
  return { entries: count, reused: false }
}

/** Keeps a matching index, else builds a new one. */
export function ensureIndex (dbPath: string, lowers: readonly Layer[], onProgress?: (entries: number) => void): IndexStatus & { reason: string } {
  const m = indexMatches(dbPath, lowers)
  if (m.ok) return { entries: m.entries, reused: true, reason: m.reason }
  return { ...buildIndex(dbPath, lowers, onProgress), reason: m.reason }
}
