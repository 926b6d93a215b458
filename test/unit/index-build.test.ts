// An index build removes the scratch files of builds that never finished
// (a daemon unmounted or killed mid-build), and only those.
import t from 'tap'
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildIndex } from '../../src/index/build.js'
import type { Layer } from '../../src/overlay/layers.js'

t.test('stale <index>.tmp-<pid> files of dead pids are removed; live ones stay', async (t) => {
  const dir = t.testdir({ lower: { f: 'x' }, w: {} })
  const lowerRoot = join(dir, 'lower')
  const st = statSync(lowerRoot, { bigint: true })
  const lowers: Layer[] = [{ root: lowerRoot, role: 'lower', index: 0, dev: st.dev, ino: st.ino }]
  const db = join(dir, 'w', 'index.db')
  mkdirSync(join(dir, 'w'), { recursive: true })
  const dead = `${db}.tmp-4194300` // above this machine's pid_max: never a live process
  const live = `${db}.tmp-1` // init: alive
  writeFileSync(dead, 'garbage')
  writeFileSync(live, 'another build')
  const status = buildIndex(db, lowers)
  t.equal(status.entries > 0, true, 'built')
  t.notOk(existsSync(dead), "a dead build's scratch is removed")
  t.ok(existsSync(live), "a live process's scratch is left alone")
  t.ok(existsSync(db))
})
