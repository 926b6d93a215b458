import t from 'tap'
import { privBitsToDrop } from '../../src/overlay/killpriv.js'

const user = { uid: 1000, gid: 1000, pid: 1 }
const inGroup = (member: boolean) => () => member

t.test('root keeps setuid and setgid', async t => {
  t.equal(privBitsToDrop(0o6755, 0, { uid: 0, gid: 0, pid: 1 }, inGroup(false)), 0)
})

t.test('setuid always goes for an unprivileged writer', async t => {
  t.equal(privBitsToDrop(0o4755, 0, user, inGroup(true)), 0o4000)
})

t.test('setgid goes with group-execute, or when the writer is outside the group', async t => {
  t.equal(privBitsToDrop(0o2775, 0, user, inGroup(true)), 0o2000, 'group-execute set')
  t.equal(privBitsToDrop(0o2664, 0, user, inGroup(false)), 0o2000, 'outside the group')
  t.equal(privBitsToDrop(0o2664, 1000, user, inGroup(true)), 0, 'in the group, no group-execute: kept')
  t.equal(privBitsToDrop(0o6666, 0, user, inGroup(false)), 0o6000, 'both')
})

t.test('plain files are left alone', async t => {
  t.equal(privBitsToDrop(0o0644, 0, user, inGroup(false)), 0)
})
