#!/usr/bin/env python3
# userns-exec.py OUTER COUNT CMD [ARGS...]
# Runs CMD as uid/gid 0 of a new user namespace whose ids 0..COUNT-1 map to
# OUTER.. on the host, in a mount namespace of its own (propagation private).
# Run as root: a helper child, still outside, writes the id maps (no
# /etc/subuid entry needed); the process itself keeps its pid and becomes CMD,
# so whoever started it can wait for it and kill it. (unshare(1) cannot do
# this: it execs before the maps exist, and the command loses its caps.)
import ctypes
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_REC = 16384
MS_PRIVATE = 1 << 18

outer, count, cmd = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
libc = ctypes.CDLL(None, use_errno=True)
me = os.getpid()
go_r, go_w = os.pipe()
helper = os.fork()
if helper == 0:
    os.close(go_w)
    os.read(go_r, 1)  # the namespace exists
    for kind in ('uid_map', 'gid_map'):
        with open(f'/proc/{me}/{kind}', 'w') as f:
            f.write(f'0 {outer} {count}\n')
    os._exit(0)
os.close(go_r)
if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
    sys.exit(f'unshare: {os.strerror(ctypes.get_errno())}')
os.write(go_w, b'x')
os.close(go_w)
_, status = os.waitpid(helper, 0)
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit('could not write the id maps')
os.setgroups([])
os.setresgid(0, 0, 0)
os.setresuid(0, 0, 0)
if libc.mount(b'none', b'/', None, MS_REC | MS_PRIVATE, None) != 0:
    sys.exit(f'mount --make-rprivate /: {os.strerror(ctypes.get_errno())}')
os.execvp(cmd[0], cmd)
