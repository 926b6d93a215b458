/**
 * The index database: one row per path the lower layers show (the merged
 * lower view of lower-view.ts, computed once and stored). A path with no row
 * is a negative answer; a directory's children are the rows whose `parent`
 * is its path, so listings come from the same table.
 */
import Database from 'better-sqlite3'

export type DB = Database.Database

export function createSchema (db: DB): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS entries (
      path   TEXT PRIMARY KEY,   -- merged lower path, '' for the root
      parent TEXT NOT NULL,
      name   TEXT NOT NULL,
      layer  INTEGER NOT NULL,   -- lower index holding the visible object
      rel    TEXT,               -- its path in that layer, when not equal to path (redirects)
      type   INTEGER NOT NULL,   -- S_IFMT bits
      dev    INTEGER NOT NULL,   -- device and inode of the visible object (for listings,
      ino    INTEGER NOT NULL,   -- which need no stat); the fingerprint guards them
      dirs   TEXT                -- directories: merged layer dirs, "layer\\x01rel" joined by "\\x00"
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS entries_by_parent ON entries (parent, name);
  `)
}

export function readMeta (db: DB, key: string): string | undefined {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined
  return row?.value
}

export function writeMeta (db: DB, key: string, value: string): void {
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value)
}

export function encodeDirs (dirs: ReadonlyArray<{ layer: number, rel: string }>): string {
  return dirs.map((d) => `${d.layer}\x01${d.rel}`).join('\x00')
}

export function decodeDirs (s: string): Array<{ layer: number, rel: string }> {
  if (s === '') return []
  return s.split('\x00').map((part) => {
    const i = part.indexOf('\x01')
    return { layer: Number(part.slice(0, i)), rel: part.slice(i + 1) }
  })
}
