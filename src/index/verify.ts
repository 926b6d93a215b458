/**
 * Deep check of an index against the layers: every path the lower view shows
 * must have a row that says the same (layer, path in layer, type, merged
 * dirs), and no row may name a path the view does not show.
 */
import Database from 'better-sqlite3'
import type { Layer } from '../overlay/layers.js'
import { joinRel } from '../overlay/layers.js'
import { displayPath } from '../overlay/bytes.js'
import { ScanLowerView } from '../overlay/lower-view.js'
import { encodeDirs } from './schema.js'

const S_IFMT = 0o170000

export interface VerifyResult { checked: number, problems: string[] }

export function verifyIndexDeep (dbPath: string, lowers: readonly Layer[], maxProblems = 20): VerifyResult {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true })
  try {
    const get = db.prepare('SELECT layer, rel, type, dirs FROM entries WHERE path = ?')
    const problems: string[] = []
    const view = new ScanLowerView(lowers, 100_000)
    let checked = 0
    const check = (p: string): boolean => {
      const e = view.lookup(p)
      const row = get.get(p) as { layer: number, rel: string | null, type: number, dirs: string | null } | undefined
      checked++
      if (e === null) return false
      const want = `${e.layer} ${e.rel} ${Number(e.stat.mode) & S_IFMT} ${e.dirs === undefined ? '-' : encodeDirs(e.dirs)}`
      const have = row === undefined ? 'no row' : `${row.layer} ${row.rel ?? p} ${row.type} ${row.dirs ?? '-'}`
      if (want !== have && problems.length < maxProblems) problems.push(`/${displayPath(p)}: layers say "${displayPath(want)}", index says "${displayPath(have)}"`)
      return e.dirs !== undefined
    }
    const stack = ['']
    check('')
    while (stack.length > 0) {
      const dir = stack.pop()!
      for (const name of view.list(dir).keys()) {
        const p = joinRel(dir, name)
        if (check(p)) stack.push(p)
      }
    }
    const rows = (db.prepare('SELECT count(*) AS n FROM entries').get() as { n: number }).n
    if (rows !== checked && problems.length < maxProblems) problems.push(`index has ${rows} rows, layers show ${checked} paths`)
    return { checked, problems }
  } finally {
    db.close()
  }
}
