/**
 * The --help epilogs of the layer tools, kept apart from their code so the
 * CLI shows them without loading it.
 */
import { DEFAULT_LIMITS } from '../layers/tar-safety.js'

export const DIFF_HELP = `What the upper layer changed relative to the lower layers, as \`docker diff\`
prints it: "A path" added, "C path" changed, "D path" deleted, sorted by path
as bytes (docker's changesByPath order). Without an upperdir, the top
lowerdir is compared with the ones below it. Reads the layer directories, never
the mount; on a live mount, files being written may show either way.

Docker's overlay rules (moby pkg/archive OverlayChanges), applied to the upper:
  - a whiteout is D, in either form (char 0/0; .wh.NAME in an OCI-form top lower);
  - an entry whose path some lower layer holds is C, else A; a directory held
    below with the same size, mode and mtime is not reported (copied up only
    because something below it changed);
  - the parent of an A or D is C (not the root);
  - an opaque directory that replaced a lower one is D, and its contents are
    then A or C; an opaque directory nothing was below is a new directory (A);
  - a renamed directory (redirect) is reported as docker reports the end
    state its mv makes without redirects: the directory as new (A, or D if a
    lower holds the new name) and every entry under it A or C; the old name D.
Where docker's rule and the merged view disagree, this follows docker: an
opaque dir that replaced a lower dir is D although the merged view shows a
directory; a path a lower holds is C even where that copy was hidden (whited
out, under an opaque dir), which the merged view would call A; a file copied
up unchanged is C; a directory whose only change is below it is not listed.

--json: {stack, changed, changes: [{path, kind, reason, layer, old}]}, old being
the lower copy a C replaces or a D deletes, or where an A in a renamed
directory comes from.`

export const LAYERS_HELP = `One row per layer, top first (the upper, then each lowerdir): its entries
(directories included; whiteouts and opaque markers counted apart as markers)
and the bytes of its regular files; how many of them the merged view shows
(VISIBLE); how many it does not (WASTED, "wasted" as dive counts it):
shadowed by a copy in a layer above at the same path, or hidden by a
whiteout, an opaque directory or a non-directory above. The last line gives
the stack's efficiency: visible bytes / all bytes.
The merged view comes from the stack's lookup index when there is one (the
mount's, or workdir/overlayts-index.db, built there if missing), so large
stacks answer in seconds; a progress line shows on a terminal.
--json: {stack, layers: [{layer, entries, bytes, markers, visibleEntries,
visibleBytes, shadowedEntries, shadowedBytes, hiddenEntries, hiddenBytes}],
total, mergedEntries, efficiency}.`

export const WHICH_HELP = `For each PATH: the layer that serves it and every copy in the layers below
that it shadows, with sizes; for a directory, the layer directories merged
into it (top first, with their path in the layer: a renamed directory's
redirect is followed) and which one is opaque; for an absent path, the first
missing component and why: a whiteout (which layer, kernel or OCI form), an
opaque directory, a non-directory parent, with the copies it hides.
With -o, PATHs are paths in the merged view (/etc/passwd). Without, each PATH
is a path under a live overlay mount (overlayts or kernel overlayfs), whose
layers are then read (never the mount itself).
--json: [{path, present, type, layer, layerPath, size, shadows, parts} or
{path, present: false, missing, reason, by, hidden}].`

export const UNPACK_HELP = `Extract an OCI/Docker image layer (a tar, plain or gzip, told by its first
bytes; \`-\` reads stdin) into DIR, a new directory (or an empty one), usable as
a lowerdir.

All or nothing: the layer is extracted into a scratch directory beside DIR and
renamed to DIR only when the whole stream was read and its digest (sha256 of the
bytes as given, compressed or not) matched --digest; on any error, refusal or
interrupt nothing is left behind.

Whiteouts: --whiteouts oci (default) keeps the .wh.NAME and .wh..wh..opq files
(overlayts reads them with whiteouts=auto or oci); --whiteouts kernel writes
what the kernel's overlayfs reads: char 0/0 devices and trusted.overlay.opaque=y
(needs root).

A hostile layer is refused with the entry and the reason, and nothing is written
outside the scratch directory: absolute names or '..' components, an entry below
a symlink or file of the layer, a hardlink to anything but a regular file
extracted before it, a relative symlink target that climbs above the layer root
(docker's rule), device nodes when not root, unsupported entry types, a
truncated or corrupt stream, more than --max-entries entries (default
${DEFAULT_LIMITS.maxEntries}) or --max-bytes of file data (default
${DEFAULT_LIMITS.maxBytes}, 256 GiB), a path longer than 4095 bytes, a PAX
header over 4 MiB. No symlink is ever followed while extracting. Xattrs applied:
user.* and security.capability (others are counted and skipped). Owners are
applied when run as root.`

export const COMMIT_HELP = `Write the upper layer (the container's changes) of a live mount MERGED, or of
the layers given with -o lowerdir=...,upperdir=..., as an OCI image layer: a
tar, gzip-compressed for an --output ending in .gz or .tgz, or on stdout with
--output -. Prints the diff ID (sha256 of the tar) and, for gzip, the digest
(sha256 of the compressed bytes).

By docker's rules: whiteouts become .wh.NAME, an opaque directory gets a
.wh..wh..opq entry, a directory renamed through a redirect is written whole (its
merged content, marked opaque) under its new name, with a whiteout of the old
name; hardlinks are tar hardlinks; xattrs user.* and security.capability are PAX
records (never trusted.overlay.* nor overlayts' own). The same upper gives the
same bytes and digest every time: entries in byte order of their names, uid,
gid, mode and mtime (whole seconds) from the files, no user or group names, no
atime or ctime, gzip with mtime 0 and OS byte 255.

Consistency on a live mount: the upper's files are read directly from the upper
directory, each through a descriptor whose size, mtime, ctime and inode are
checked before and after its data is read; a file that changes or goes away
during the commit fails it ("changed while being committed"), and no partial
layer is left at the output (a file output is written beside itself and renamed
when complete). So a layer never holds a half-written file; for a tree
consistent as a whole, stop or pause the writers first, as docker commit pauses
the container.`
