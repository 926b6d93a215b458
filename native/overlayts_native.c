// overlayts_native: syscalls Node's fs lacks (mknod, utimensat with
// AT_SYMLINK_NOFOLLOW + UTIME_NOW/UTIME_OMIT, renameat2, copy-up data copy, cached reads,
// fallocate, lseek for SEEK_DATA/SEEK_HOLE, l*xattr with byte names, openDirChain for
// host paths longer than PATH_MAX; the /dev/fuse device I/O is in fuse_dev.c).
// Plain N-API, synchronous. Errors mimic Node's fs errors:
//   err.code = 'ENOENT', err.errno = -2, err.syscall = 'mknod', err.path = '...', err.dest = '...'
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <node_api.h>
#include <uv.h>

#include "addon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#ifndef RENAME_WHITEOUT
#define RENAME_WHITEOUT (1 << 2)
#endif

#define MAX_ARGS 5

static napi_value make_errno_error (napi_env env, int err, const char *syscall_name, const char *path, const char *dest) {
  const char *code = uv_err_name(-err);
  const char *desc = uv_strerror(-err);
  char unknown[32];
  if (code == NULL || strncmp(code, "Unknown", 7) == 0) {
    snprintf(unknown, sizeof(unknown), "E%d", err);
    code = unknown;
    desc = strerror(err);
  }

  size_t msg_len = strlen(code) + strlen(desc) + strlen(syscall_name) +
    (path ? strlen(path) : 0) + (dest ? strlen(dest) : 0) + 32;
  char *msg = malloc(msg_len);
  if (msg == NULL) {
    napi_value c, m, e;
    napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
    napi_create_string_utf8(env, desc, NAPI_AUTO_LENGTH, &m);
    napi_create_error(env, c, m, &e);
    return e;
  }
  if (path && dest) snprintf(msg, msg_len, "%s: %s, %s '%s' -> '%s'", code, desc, syscall_name, path, dest);
  else if (path) snprintf(msg, msg_len, "%s: %s, %s '%s'", code, desc, syscall_name, path);
  else snprintf(msg, msg_len, "%s: %s, %s", code, desc, syscall_name);

  napi_value msg_v, code_v, error, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msg_v);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v);
  free(msg);
  napi_create_error(env, code_v, msg_v, &error);
  napi_create_int32(env, -err, &v);
  napi_set_named_property(env, error, "errno", v);
  napi_set_named_property(env, error, "code", code_v);
  napi_create_string_utf8(env, syscall_name, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, error, "syscall", v);
  // path and dest as byte strings (one char per byte, the 'latin1' decoding),
  // as the core names paths: any byte survives the round trip.
  if (path) {
    napi_create_string_latin1(env, path, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, error, "path", v);
  }
  if (dest) {
    napi_create_string_latin1(env, dest, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, error, "dest", v);
  }
  return error;
}

static void throw_errno (napi_env env, int err, const char *syscall_name, const char *path, const char *dest) {
  napi_throw(env, make_errno_error(env, err, syscall_name, path, dest));
}

// Returns a malloc'ed NUL-terminated path from a Buffer (its bytes) or a
// string (read as a byte string: each char code one byte, as the core names
// paths; chars above 255 are truncated, so callers pass Buffers), or NULL
// (exception pending).
static char * get_path (napi_env env, napi_value value, const char *name) {
  napi_valuetype type;
  napi_typeof(env, value, &type);
  if (type == napi_string) {
    size_t len = 0;
    if (napi_get_value_string_latin1(env, value, NULL, 0, &len) != napi_ok) goto bad;
    char *buf = malloc(len + 1);
    if (buf == NULL) goto oom;
    napi_get_value_string_latin1(env, value, buf, len + 1, &len);
    if (strlen(buf) != len) {
      free(buf);
      goto nul;
    }
    return buf;
  }
  bool is_buffer = false;
  napi_is_buffer(env, value, &is_buffer);
  if (is_buffer) {
    void *data = NULL;
    size_t len = 0;
    napi_get_buffer_info(env, value, &data, &len);
    if (memchr(data, 0, len) != NULL) goto nul;
    char *buf = malloc(len + 1);
    if (buf == NULL) goto oom;
    memcpy(buf, data, len);
    buf[len] = 0;
    return buf;
  }
bad: {
    char msg[128];
    snprintf(msg, sizeof(msg), "The \"%s\" argument must be of type string or an instance of Buffer", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return NULL;
  }
nul: {
    char msg[128];
    snprintf(msg, sizeof(msg), "The argument '%s' must be a string without null bytes", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return NULL;
  }
oom:
  napi_throw_error(env, "ENOMEM", "out of memory");
  return NULL;
}

static int get_number (napi_env env, napi_value value, const char *name, double *out) {
  napi_valuetype type;
  napi_typeof(env, value, &type);
  if (type == napi_bigint) {
    int64_t v;
    bool lossless;
    napi_get_value_bigint_int64(env, value, &v, &lossless);
    *out = (double) v;
    return 1;
  }
  if (type != napi_number || napi_get_value_double(env, value, out) != napi_ok || *out != *out) {
    char msg[128];
    snprintf(msg, sizeof(msg), "The \"%s\" argument must be of type number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return 0;
  }
  return 1;
}

static int get_args (napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = MAX_ARGS;
  napi_value tmp[MAX_ARGS];
  if (napi_get_cb_info(env, info, &argc, tmp, NULL, NULL) != napi_ok) return 0;
  if (argc < n) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "missing arguments");
    return 0;
  }
  for (size_t i = 0; i < n; i++) argv[i] = tmp[i];
  return 1;
}

// mknod(path, mode, rdev): mode includes the S_IF* type bits
static napi_value js_mknod (napi_env env, napi_callback_info info) {
  napi_value argv[3];
  double mode, rdev;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (!get_number(env, argv[1], "mode", &mode) || !get_number(env, argv[2], "rdev", &rdev)) return NULL;
  char *path = get_path(env, argv[0], "path");
  if (path == NULL) return NULL;
  if (mknod(path, (mode_t) (uint32_t) mode, (dev_t) (uint64_t) rdev) != 0) throw_errno(env, errno, "mknod", path, NULL);
  free(path);
  return NULL;
}

// utimensat(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec) with AT_SYMLINK_NOFOLLOW
static napi_value js_utimensat (napi_env env, napi_callback_info info) {
  napi_value argv[5];
  double as, an, ms, mn;
  if (!get_args(env, info, 5, argv)) return NULL;
  if (!get_number(env, argv[1], "atimeSec", &as) || !get_number(env, argv[2], "atimeNsec", &an) ||
      !get_number(env, argv[3], "mtimeSec", &ms) || !get_number(env, argv[4], "mtimeNsec", &mn)) return NULL;
  char *path = get_path(env, argv[0], "path");
  if (path == NULL) return NULL;
  struct timespec ts[2];
  ts[0].tv_sec = (time_t) (int64_t) as;
  ts[0].tv_nsec = (long) an;
  ts[1].tv_sec = (time_t) (int64_t) ms;
  ts[1].tv_nsec = (long) mn;
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) != 0) throw_errno(env, errno, "utimensat", path, NULL);
  free(path);
  return NULL;
}

// renameat2(oldPath, newPath, flags)
static napi_value js_renameat2 (napi_env env, napi_callback_info info) {
  napi_value argv[3];
  double flags;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (!get_number(env, argv[2], "flags", &flags)) return NULL;
  char *from = get_path(env, argv[0], "oldPath");
  if (from == NULL) return NULL;
  char *to = get_path(env, argv[1], "newPath");
  if (to == NULL) {
    free(from);
    return NULL;
  }
  if (syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, (unsigned int) flags) != 0) {
    throw_errno(env, errno, "renameat2", from, to);
  }
  free(from);
  free(to);
  return NULL;
}

// copyData(src, dst) -> Promise<void>, on libuv's thread pool.
// Copies a regular file's data into a new file dst (created 0600, O_EXCL):
// a reflink where the filesystem can, else copy_file_range over the data
// segments only (SEEK_DATA/SEEK_HOLE), so sparse files stay sparse, as with
// the kernel's overlayfs copy-up. The copy is fsynced: it is about to be
// renamed into upper, and must not turn up empty after a power cut.
#include <sys/ioctl.h>
#include <linux/fs.h>

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *src;
  char *dst;
  int err;
  const char *failed_syscall;
} copy_job_t;

static int copy_segment (int in, int out, off_t start, off_t end, const char **failed) {
  off_t off_in = start, off_out = start;
  while (off_in < end) {
    size_t want = (size_t) (end - off_in);
    if (want > (1u << 30)) want = 1u << 30;
    ssize_t n = copy_file_range(in, &off_in, out, &off_out, want, 0);
    if (n > 0) continue;
    if (n == 0) return 0; // source shrank: stop at what is there
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) { *failed = "copy_file_range"; return errno; }
    // Filesystems without copy_file_range between them: plain read/write.
    static __thread char buf[1 << 17];
    while (off_in < end) {
      size_t chunk = (size_t) (end - off_in) < sizeof(buf) ? (size_t) (end - off_in) : sizeof(buf);
      ssize_t r = pread(in, buf, chunk, off_in);
      if (r < 0) { if (errno == EINTR) continue; *failed = "read"; return errno; }
      if (r == 0) return 0;
      ssize_t done = 0;
      while (done < r) {
        ssize_t w = pwrite(out, buf + done, (size_t) (r - done), off_in + done);
        if (w < 0) { if (errno == EINTR) continue; *failed = "write"; return errno; }
        done += w;
      }
      off_in += r;
    }
    return 0;
  }
  return 0;
}

static void copy_execute (napi_env env, void *data) {
  (void) env;
  copy_job_t *job = data;
  int in = open(job->src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0) { job->err = errno; job->failed_syscall = "open"; return; }
  int out = open(job->dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) { job->err = errno; job->failed_syscall = "open"; close(in); return; }
  struct stat st;
  int err = 0;
  const char *failed = NULL;
  if (fstat(in, &st) != 0) { err = errno; failed = "fstat"; goto done; }
  if (ioctl(out, FICLONE, in) == 0) goto sync;
  off_t off = 0;
  while (off < st.st_size) {
    off_t data_at = lseek(in, off, SEEK_DATA);
    if (data_at < 0) {
      if (errno == ENXIO) break; // only a hole is left
      if (errno == EINVAL) { data_at = off; } else { err = errno; failed = "lseek"; goto done; }
    }
    off_t hole_at = lseek(in, data_at, SEEK_HOLE);
    if (hole_at < 0) hole_at = st.st_size;
    err = copy_segment(in, out, data_at, hole_at, &failed);
    if (err != 0) goto done;
    off = hole_at;
  }
  if (ftruncate(out, st.st_size) != 0) { err = errno; failed = "ftruncate"; goto done; }
sync:
  if (fsync(out) != 0) { err = errno; failed = "fsync"; }
done:
  close(in);
  if (close(out) != 0 && err == 0) { err = errno; failed = "close"; }
  if (err != 0) unlink(job->dst);
  job->err = err;
  job->failed_syscall = failed;
}

static void copy_complete (napi_env env, napi_status status, void *data) {
  copy_job_t *job = data;
  if (status != napi_ok && job->err == 0) { job->err = ECANCELED; job->failed_syscall = "copyData"; }
  if (job->err == 0) {
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, job->deferred, undef);
  } else {
    napi_reject_deferred(env, job->deferred, make_errno_error(env, job->err, job->failed_syscall, job->src, job->dst));
  }
  napi_delete_async_work(env, job->work);
  free(job->src);
  free(job->dst);
  free(job);
}

static napi_value js_copyData (napi_env env, napi_callback_info info) {
  napi_value argv[2], promise, name;
  if (!get_args(env, info, 2, argv)) return NULL;
  copy_job_t *job = calloc(1, sizeof(copy_job_t));
  if (job == NULL) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  job->src = get_path(env, argv[0], "src");
  if (job->src == NULL) { free(job); return NULL; }
  job->dst = get_path(env, argv[1], "dst");
  if (job->dst == NULL) { free(job->src); free(job); return NULL; }
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "overlayts.copyData", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, copy_execute, copy_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}


// preadNowait(fd, buffer, length, position) -> bytes read, or -1 when the data
// is not in the page cache (preadv2 with RWF_NOWAIT answered EAGAIN): the
// daemon then reads on the thread pool. A cached read costs less done here
// than the trip to the pool and back; an uncached one must not block.
#include <sys/uio.h>
#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif
#define READAHEAD_BYTES (4 << 20)

static napi_value js_preadNowait (napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  double fd, len, pos;
  if (!get_args(env, info, 4, argv)) return NULL;
  if (!get_number(env, argv[0], "fd", &fd) || !get_number(env, argv[2], "length", &len) || !get_number(env, argv[3], "position", &pos)) return NULL;
  void *data = NULL;
  size_t size = 0;
  if (napi_get_buffer_info(env, argv[1], &data, &size) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"buffer\" argument must be a Buffer");
    return NULL;
  }
  if (len > (double) size) len = (double) size;
  struct iovec iov = { data, (size_t) len };
  ssize_t n;
  do {
    n = preadv2((int) fd, &iov, 1, (off_t) pos, RWF_NOWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL) {
      // Ask for this and the next few requests' data now (the I/O is only
      // submitted, not waited for): a sequential reader then finds it cached.
      if (errno == EAGAIN) readahead((int) fd, (off_t) pos, READAHEAD_BYTES);
      napi_create_int32(env, -1, &result);
      return result;
    }
    throw_errno(env, errno, "preadv2", NULL, NULL);
    return NULL;
  }
  napi_create_double(env, (double) n, &result);
  return result;
}

// fallocate(fd, mode, offset, length): fallocate(2) as the caller asked it
// (FALLOC_FL_* mode bits passed through). lseek(fd, offset, whence) ->
// new offset: Node's fs has no lseek, and SEEK_DATA / SEEK_HOLE must be
// answered by the file in its layer.
static napi_value js_fallocate (napi_env env, napi_callback_info info) {
  napi_value argv[4];
  double fd, mode, off, len;
  if (!get_args(env, info, 4, argv)) return NULL;
  if (!get_number(env, argv[0], "fd", &fd) || !get_number(env, argv[1], "mode", &mode) ||
      !get_number(env, argv[2], "offset", &off) || !get_number(env, argv[3], "length", &len)) return NULL;
  int r;
  do {
    r = fallocate((int) fd, (int) mode, (off_t) off, (off_t) len);
  } while (r < 0 && errno == EINTR);
  if (r < 0) { throw_errno(env, errno, "fallocate", NULL, NULL); return NULL; }
  return NULL;
}

static napi_value js_lseek (napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  double fd, off, whence;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (!get_number(env, argv[0], "fd", &fd) || !get_number(env, argv[1], "offset", &off) ||
      !get_number(env, argv[2], "whence", &whence)) return NULL;
  off_t r = lseek((int) fd, (off_t) off, (int) whence);
  if (r < 0) { throw_errno(env, errno, "lseek", NULL, NULL); return NULL; }
  napi_create_double(env, (double) r, &result);
  return result;
}

// Extended attributes, never following a symlink (the l* calls), with paths
// and names as raw bytes (Buffers, or byte strings), so any name a layer
// holds can be read, listed, set and removed:
//   lgetxattr(path, name) -> Buffer, or null when the attribute is not set (ENODATA)
//   llistxattr(path) -> Buffer: the raw NUL-separated list of names
//   lsetxattr(path, name, value: Buffer, flags): flags XATTR_CREATE / XATTR_REPLACE go to the syscall
//   lremovexattr(path, name)
// The get/list buffers are sized by a first call of size 0; a value that grew
// in between (ERANGE) is asked for again.
#include <sys/xattr.h>

static int get_bytes (napi_env env, napi_value value, const char *name, void **data, size_t *len) {
  bool is_buffer = false;
  napi_is_buffer(env, value, &is_buffer);
  if (is_buffer) {
    napi_get_buffer_info(env, value, data, len);
    return 1;
  }
  bool is_typed = false;
  napi_is_typedarray(env, value, &is_typed);
  if (is_typed) {
    napi_typedarray_type type;
    size_t count, offset;
    napi_value ab;
    napi_get_typedarray_info(env, value, &type, &count, data, &ab, &offset);
    if (type == napi_uint8_array || type == napi_int8_array || type == napi_uint8_clamped_array) {
      *len = count;
      return 1;
    }
  }
  char msg[128];
  snprintf(msg, sizeof(msg), "The \"%s\" argument must be an instance of Buffer or Uint8Array", name);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return 0;
}

static napi_value js_lgetxattr (napi_env env, napi_callback_info info) {
  napi_value argv[2], result = NULL;
  if (!get_args(env, info, 2, argv)) return NULL;
  char *path = get_path(env, argv[0], "path");
  if (path == NULL) return NULL;
  char *name = get_path(env, argv[1], "name");
  if (name == NULL) { free(path); return NULL; }
  char *buf = NULL;
  for (;;) {
    ssize_t size = lgetxattr(path, name, NULL, 0);
    if (size < 0) {
      if (errno == ENODATA) napi_get_null(env, &result);
      else throw_errno(env, errno, "lgetxattr", path, NULL);
      break;
    }
    char *nbuf = realloc(buf, size > 0 ? (size_t) size : 1);
    if (nbuf == NULL) { napi_throw_error(env, "ENOMEM", "out of memory"); break; }
    buf = nbuf;
    ssize_t n = lgetxattr(path, name, buf, (size_t) size);
    if (n >= 0) { napi_create_buffer_copy(env, (size_t) n, buf, NULL, &result); break; }
    if (errno == ERANGE) continue;
    if (errno == ENODATA) napi_get_null(env, &result);
    else throw_errno(env, errno, "lgetxattr", path, NULL);
    break;
  }
  free(buf);
  free(name);
  free(path);
  return result;
}

static napi_value js_llistxattr (napi_env env, napi_callback_info info) {
  napi_value argv[1], result = NULL;
  if (!get_args(env, info, 1, argv)) return NULL;
  char *path = get_path(env, argv[0], "path");
  if (path == NULL) return NULL;
  char *buf = NULL;
  for (;;) {
    ssize_t size = llistxattr(path, NULL, 0);
    if (size < 0) { throw_errno(env, errno, "llistxattr", path, NULL); break; }
    char *nbuf = realloc(buf, size > 0 ? (size_t) size : 1);
    if (nbuf == NULL) { napi_throw_error(env, "ENOMEM", "out of memory"); break; }
    buf = nbuf;
    ssize_t n = llistxattr(path, buf, (size_t) size);
    if (n >= 0) { napi_create_buffer_copy(env, (size_t) n, buf, NULL, &result); break; }
    if (errno == ERANGE) continue;
    throw_errno(env, errno, "llistxattr", path, NULL);
    break;
  }
  free(buf);
  free(path);
  return result;
}

static napi_value js_lsetxattr (napi_env env, napi_callback_info info) {
  napi_value argv[4];
  double flags;
  void *value = NULL;
  size_t len = 0;
  if (!get_args(env, info, 4, argv)) return NULL;
  if (!get_bytes(env, argv[2], "value", &value, &len) || !get_number(env, argv[3], "flags", &flags)) return NULL;
  char *path = get_path(env, argv[0], "path");
  if (path == NULL) return NULL;
  char *name = get_path(env, argv[1], "name");
  if (name == NULL) { free(path); return NULL; }
  if (lsetxattr(path, name, len > 0 ? value : "", len, (int) flags) != 0) throw_errno(env, errno, "lsetxattr", path, NULL);
  free(name);
  free(path);
  return NULL;
}

static napi_value js_lremovexattr (napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  char *path = get_path(env, argv[0], "path");
  if (path == NULL) return NULL;
  char *name = get_path(env, argv[1], "name");
  if (name == NULL) { free(path); return NULL; }
  if (lremovexattr(path, name) != 0) throw_errno(env, errno, "lremovexattr", path, NULL);
  free(name);
  free(path);
  return NULL;
}

// linkFd(fd, newPath): gives the open file `fd` a name (an O_TMPFILE file
// linked into the tree): linkat(fd, "", AT_EMPTY_PATH) where the daemon may
// (CAP_DAC_READ_SEARCH), else through /proc/self/fd with AT_SYMLINK_FOLLOW.
static napi_value js_linkFd (napi_env env, napi_callback_info info) {
  napi_value argv[2];
  double fd;
  if (!get_args(env, info, 2, argv)) return NULL;
  if (!get_number(env, argv[0], "fd", &fd)) return NULL;
  char *to = get_path(env, argv[1], "newPath");
  if (to == NULL) return NULL;
  int r = linkat((int) fd, "", AT_FDCWD, to, AT_EMPTY_PATH);
  if (r != 0 && (errno == ENOENT || errno == EPERM)) {
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", (int) fd);
    r = linkat(AT_FDCWD, proc, AT_FDCWD, to, AT_SYMLINK_FOLLOW);
  }
  if (r != 0) throw_errno(env, errno, "linkat", to, NULL);
  free(to);
  return NULL;
}

// openDirChain(path) -> fd: an O_PATH descriptor of directory `path`, reached
// one component at a time from "/" with openat(O_PATH | O_DIRECTORY |
// O_NOFOLLOW), so the kernel never sees the whole path: a host path of
// PATH_MAX bytes or more (a layer root plus a deep merged path) still
// resolves. No component is a symlink that gets followed (a symlink
// component answers ENOTDIR). The caller closes the fd.
static napi_value js_openDirChain (napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  if (!get_args(env, info, 1, argv)) return NULL;
  char *path = get_path(env, argv[0], "path");
  if (path == NULL) return NULL;
  int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) { throw_errno(env, errno, "open", path, NULL); free(path); return NULL; }
  char *p = path;
  while (*p != 0) {
    while (*p == '/') p++;
    if (*p == 0) break;
    char *end = strchr(p, '/');
    char saved = 0;
    if (end != NULL) { saved = *end; *end = 0; }
    int next;
    do {
      next = openat(fd, p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    } while (next < 0 && errno == EINTR);
    int err = errno;
    if (end != NULL) *end = saved;
    close(fd);
    if (next < 0) { throw_errno(env, err, "openat", path, NULL); free(path); return NULL; }
    fd = next;
    if (end == NULL) break;
    p = end;
  }
  free(path);
  napi_create_int32(env, fd, &result);
  return result;
}



static napi_value init (napi_env env, napi_value exports) {
  export_fn(env, exports, "mknod", js_mknod);
  export_fn(env, exports, "utimensat", js_utimensat);
  export_fn(env, exports, "renameat2", js_renameat2);
  export_fn(env, exports, "copyData", js_copyData);
  export_fn(env, exports, "preadNowait", js_preadNowait);
  export_fn(env, exports, "fallocate", js_fallocate);
  export_fn(env, exports, "lseek", js_lseek);
  export_fn(env, exports, "linkFd", js_linkFd);
  export_fn(env, exports, "openDirChain", js_openDirChain);
  export_fn(env, exports, "lgetxattr", js_lgetxattr);
  export_fn(env, exports, "llistxattr", js_llistxattr);
  export_fn(env, exports, "lsetxattr", js_lsetxattr);
  export_fn(env, exports, "lremovexattr", js_lremovexattr);
  export_int(env, exports, "UTIME_NOW", UTIME_NOW);
  export_int(env, exports, "UTIME_OMIT", UTIME_OMIT);
  export_int(env, exports, "RENAME_NOREPLACE", RENAME_NOREPLACE);
  export_int(env, exports, "RENAME_EXCHANGE", RENAME_EXCHANGE);
  export_int(env, exports, "RENAME_WHITEOUT", RENAME_WHITEOUT);
  export_int(env, exports, "XATTR_CREATE", XATTR_CREATE);
  export_int(env, exports, "XATTR_REPLACE", XATTR_REPLACE);
  fuse_dev_register(env, exports);
  fuse_uring_register(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
