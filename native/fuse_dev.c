// fuse_dev: the native half of the /dev/fuse transport (no libfuse).
//
// Contract. This file only does device I/O, mounting and the FUSE ioctls;
// decoding requests and encoding replies is TypeScript's job (replies are
// written from JS with fs.writeSync(fd, buf), one whole reply per write).
// Everything is synchronous on the JS thread except the reader threads, and
// every failure throws a Node-style errno error (err.code 'ENODEV',
// err.errno -19, err.syscall 'ioctl', err.path for mount/umount2).
//
//   fuseOpenDevice() -> fd             open("/dev/fuse", O_RDWR|O_CLOEXEC)
//   fuseCloneDevice(masterFd) -> fd    new /dev/fuse fd + FUSE_DEV_IOC_CLONE:
//                                      one more queue reader for the same
//                                      connection (the master must be mounted)
//   fuseSocketpair() -> [fd, fd]       AF_UNIX pair (CLOEXEC), for fusermount3
//   fuseRecvFd(sock) -> fd             one SCM_RIGHTS fd (fusermount3's /dev/fuse)
//   mount(source, target, fstype, flags, data)  mount(2); target string|Buffer
//   umount2(target, flags)             umount2(2); never wait (no MNT_DETACH)
//                                      from the thread that answers requests
//   fuseBackingOpen(devFd, fd) -> id   FUSE_DEV_IOC_BACKING_OPEN (passthrough;
//                                      needs FUSE_PASSTHROUGH negotiated in
//                                      INIT and CAP_SYS_ADMIN); id > 0
//   fuseBackingClose(devFd, id)        FUSE_DEV_IOC_BACKING_CLOSE
//   fuseStartReaders(fds, bufSize, onRequest) -> handle
//       One detached pthread per fd, each with one bufSize buffer
//       (bufSize >= 8192; the kernel wants room for a max_write WRITE). A
//       thread loops on read(fd): every request read is copied and delivered
//       exactly once, in read order per fd, as onRequest(channel, buf, 0) on
//       the JS thread (channel = index of the fd in fds) through one shared
//       napi_threadsafe_function (unlimited queue). EINTR/ENOENT retry the
//       read; EAGAIN (an O_NONBLOCK fd) waits in poll() and retries. Any
//       other error (ENODEV once unmounted, ECONNABORTED once aborted) stops
//       that thread. When every thread has stopped, onRequest(-1, null, errno)
//       is called exactly once, after all requests: errno is the first nonzero
//       errno a thread stopped with, or 0 if all stopped via fuseStopReaders.
//       Then the threadsafe function is released; until then it keeps the
//       event loop alive. An exception thrown by onRequest becomes an
//       uncaught exception (napi_fatal_exception), as in any other callback.
//   fuseStartPoll(fd, bufSize, onRequest)
//       The same delivery without threads: fd (made O_NONBLOCK) is watched
//       by a uv_poll_t on the JS thread's loop and read there until the
//       connection ends (see below).
//   fuseStopReaders(handle)            Never blocks: sets a flag checked
//       before each read and unrefs the threadsafe function so the process
//       may exit. Threads blocked in read() stay there until the caller
//       unmounts or aborts the connection (read -> ENODEV/ECONNABORTED);
//       the end callback still comes then, if the event loop is still alive.
//
// Memory: each request is malloc'd on its reader thread and freed on the JS
// thread after napi_create_buffer_copy, or freed unseen when the environment
// is torn down (call_js gets env == NULL). The reader set is refcounted (each
// thread, the threadsafe function's finalizer, the JS handle) and freed by
// whoever lets go last; reader threads never touch the threadsafe function
// after its finalizer ran (checked under the set's mutex). Signal masks are
// inherited untouched (nothing is blocked); thread stacks are 256 KiB.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <node_api.h>
#include <uv.h>

#include "addon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/types.h>
#include <unistd.h>

// Defined here: Debian bookworm's linux-libc-dev (6.1) predates passthrough.
struct fdev_backing_map {
  int32_t fd;
  uint32_t flags;
  uint64_t padding;
};
#define FDEV_IOC_CLONE _IOR(229, 0, uint32_t)
#define FDEV_IOC_BACKING_OPEN _IOW(229, 1, struct fdev_backing_map)
#define FDEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

#define FDEV_MIN_READ_BUFFER 8192
#define FDEV_MAX_READERS 1024
#define FDEV_STACK_SIZE (256 * 1024)

// ---------------------------------------------------------------------------
// errors and arguments

static void fdev_throw (napi_env env, int err, const char *syscall_name, const char *path, const char *detail) {
  const char *code = uv_err_name(-err);
  const char *desc = uv_strerror(-err);
  char unknown[32];
  if (code == NULL || strncmp(code, "Unknown", 7) == 0) {
    snprintf(unknown, sizeof(unknown), "E%d", err);
    code = unknown;
    desc = strerror(err);
  }
  char msg[PATH_MAX + 256];
  if (path) snprintf(msg, sizeof(msg), "%s: %s, %s '%s'", code, desc, syscall_name, path);
  else if (detail) snprintf(msg, sizeof(msg), "%s: %s, %s %s", code, desc, syscall_name, detail);
  else snprintf(msg, sizeof(msg), "%s: %s, %s", code, desc, syscall_name);

  napi_value msg_v, code_v, error, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msg_v);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v);
  napi_create_error(env, code_v, msg_v, &error);
  napi_create_int32(env, -err, &v);
  napi_set_named_property(env, error, "errno", v);
  napi_set_named_property(env, error, "code", code_v);
  napi_create_string_utf8(env, syscall_name, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, error, "syscall", v);
  if (path) {
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, error, "path", v);
  }
  napi_throw(env, error);
}

static void fdev_type_error (napi_env env, const char *name, const char *what) {
  char msg[160];
  snprintf(msg, sizeof(msg), "The \"%s\" argument must be %s", name, what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

// An integer in [min, max], else a TypeError/RangeError is pending and 0 returned.
static int fdev_int (napi_env env, napi_value value, const char *name, int64_t min, int64_t max, int64_t *out) {
  napi_valuetype type;
  double d;
  napi_typeof(env, value, &type);
  if (type != napi_number || napi_get_value_double(env, value, &d) != napi_ok) {
    fdev_type_error(env, name, "of type number");
    return 0;
  }
  if (!(d >= (double) min && d <= (double) max) || d != (double) (int64_t) d) {
    char msg[200];
    snprintf(msg, sizeof(msg), "The value of \"%s\" is out of range. It must be an integer >= %lld and <= %lld. Received %g",
      name, (long long) min, (long long) max, d);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return 0;
  }
  *out = (int64_t) d;
  return 1;
}

// A malloc'd NUL-terminated copy of a string (or, if allow_buffer, Buffer)
// argument; NULL with an exception pending on failure.
static char * fdev_string (napi_env env, napi_value value, const char *name, bool allow_buffer) {
  napi_valuetype type;
  napi_typeof(env, value, &type);
  char *buf = NULL;
  size_t len = 0;
  if (type == napi_string) {
    napi_get_value_string_utf8(env, value, NULL, 0, &len);
    buf = malloc(len + 1);
    if (buf == NULL) goto oom;
    napi_get_value_string_utf8(env, value, buf, len + 1, &len);
  } else {
    bool is_buffer = false;
    if (allow_buffer) napi_is_buffer(env, value, &is_buffer);
    if (!is_buffer) {
      fdev_type_error(env, name, allow_buffer ? "of type string or an instance of Buffer" : "of type string");
      return NULL;
    }
    void *data = NULL;
    napi_get_buffer_info(env, value, &data, &len);
    buf = malloc(len + 1);
    if (buf == NULL) goto oom;
    if (len > 0) memcpy(buf, data, len);
    buf[len] = 0;
  }
  if (strlen(buf) != len) {
    free(buf);
    char msg[160];
    snprintf(msg, sizeof(msg), "The argument '%s' must be a string without null bytes", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return NULL;
  }
  return buf;
oom:
  napi_throw_error(env, "ENOMEM", "out of memory");
  return NULL;
}

static int fdev_args (napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc < n) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "missing arguments");
    return 0;
  }
  return 1;
}

static napi_value fdev_int_value (napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

// ---------------------------------------------------------------------------
// device, mount, ioctls

static int open_dev (void) {
  int fd;
  do fd = open("/dev/fuse", O_RDWR | O_CLOEXEC); while (fd < 0 && errno == EINTR);
  return fd;
}

// fuseSocketpair() -> [fd, fd]: an AF_UNIX stream pair, both close-on-exec
// (the caller hands one to fusermount3 as an inherited fd).
static napi_value js_socketpair (napi_env env, napi_callback_info info) {
  (void) info;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) { fdev_throw(env, errno, "socketpair", NULL, NULL); return NULL; }
  napi_value arr;
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, fdev_int_value(env, sv[0]));
  napi_set_element(env, arr, 1, fdev_int_value(env, sv[1]));
  return arr;
}

// fuseRecvFd(sock) -> fd: receives one fd sent with SCM_RIGHTS (fusermount3
// passes the mounted /dev/fuse fd this way); blocks until it comes or the
// peer closes (then ECONNRESET).
static napi_value js_recv_fd (napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t sock;
  if (!fdev_args(env, info, 1, argv)) return NULL;
  if (!fdev_int(env, argv[0], "sock", 0, INT_MAX, &sock)) return NULL;
  char byte;
  struct iovec iov = { &byte, 1 };
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } ctl;
  struct msghdr msg = { 0 };
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof(ctl.buf);
  ssize_t n;
  do { n = recvmsg((int) sock, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
  if (n < 0) { fdev_throw(env, errno, "recvmsg", NULL, NULL); return NULL; }
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (n == 0 || c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
    fdev_throw(env, ECONNRESET, "recvmsg", NULL, "(no fd received)");
    return NULL;
  }
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof(fd));
  return fdev_int_value(env, fd);
}

static napi_value js_open_device (napi_env env, napi_callback_info info) {
  int fd = open_dev();
  if (fd < 0) {
    fdev_throw(env, errno, "open", "/dev/fuse", NULL);
    return NULL;
  }
  return fdev_int_value(env, fd);
}

static napi_value js_clone_device (napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t master;
  if (!fdev_args(env, info, 1, argv) || !fdev_int(env, argv[0], "masterFd", 0, INT32_MAX, &master)) return NULL;
  int fd = open_dev();
  if (fd < 0) {
    fdev_throw(env, errno, "open", "/dev/fuse", NULL);
    return NULL;
  }
  uint32_t m = (uint32_t) master;
  if (ioctl(fd, FDEV_IOC_CLONE, &m) != 0) {
    int err = errno;
    close(fd);
    fdev_throw(env, err, "ioctl", NULL, "FUSE_DEV_IOC_CLONE");
    return NULL;
  }
  return fdev_int_value(env, fd);
}

static napi_value js_mount (napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int64_t flags;
  if (!fdev_args(env, info, 5, argv) || !fdev_int(env, argv[3], "flags", 0, UINT32_MAX, &flags)) return NULL;
  char *source = NULL, *target = NULL, *fstype = NULL, *data = NULL;
  if ((source = fdev_string(env, argv[0], "source", false)) != NULL &&
      (target = fdev_string(env, argv[1], "target", true)) != NULL &&
      (fstype = fdev_string(env, argv[2], "fstype", false)) != NULL &&
      (data = fdev_string(env, argv[4], "data", false)) != NULL) {
    if (mount(source, target, fstype, (unsigned long) flags, data) != 0) fdev_throw(env, errno, "mount", target, NULL);
  }
  free(source);
  free(target);
  free(fstype);
  free(data);
  return NULL;
}

static napi_value js_umount2 (napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t flags;
  if (!fdev_args(env, info, 2, argv) || !fdev_int(env, argv[1], "flags", 0, INT32_MAX, &flags)) return NULL;
  char *target = fdev_string(env, argv[0], "target", true);
  if (target == NULL) return NULL;
  if (umount2(target, (int) flags) != 0) fdev_throw(env, errno, "umount2", target, NULL);
  free(target);
  return NULL;
}

static napi_value js_backing_open (napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t dev, fd;
  if (!fdev_args(env, info, 2, argv) || !fdev_int(env, argv[0], "devFd", 0, INT32_MAX, &dev) ||
      !fdev_int(env, argv[1], "fd", 0, INT32_MAX, &fd)) return NULL;
  struct fdev_backing_map map = { (int32_t) fd, 0, 0 };
  int id = ioctl((int) dev, FDEV_IOC_BACKING_OPEN, &map);
  if (id < 0) {
    fdev_throw(env, errno, "ioctl", NULL, "FUSE_DEV_IOC_BACKING_OPEN");
    return NULL;
  }
  return fdev_int_value(env, id);
}

static napi_value js_backing_close (napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t dev, id;
  if (!fdev_args(env, info, 2, argv) || !fdev_int(env, argv[0], "devFd", 0, INT32_MAX, &dev) ||
      !fdev_int(env, argv[1], "backingId", 0, UINT32_MAX, &id)) return NULL;
  uint32_t id32 = (uint32_t) id;
  if (ioctl((int) dev, FDEV_IOC_BACKING_CLOSE, &id32) != 0) fdev_throw(env, errno, "ioctl", NULL, "FUSE_DEV_IOC_BACKING_CLOSE");
  return NULL;
}

// ---------------------------------------------------------------------------
// reader threads

typedef struct {
  int channel;  // index in fds, or -1 for the end message
  int err;      // end message only
  size_t len;
  char data[];
} fdev_msg;

typedef struct fdev_set fdev_set;

typedef struct {
  fdev_set *set;
  int fd;
  int channel;
  char *buf;
} fdev_reader;

struct fdev_set {
  napi_threadsafe_function tsfn;
  size_t buf_size;
  int count;
  pthread_mutex_t mu;  // guards gate, tsfn_dead, and every reader-thread use of tsfn
  pthread_cond_t cv;
  int gate;            // 0: wait; 1: run; -1: start failed, exit at once
  bool tsfn_dead;      // its finalizer ran: hands off
  bool unrefd;         // JS thread only
  atomic_int stop;
  atomic_int running;
  atomic_int first_err;  // 0 until a thread stops with an error
  atomic_int refs;       // count threads + tsfn finalizer + JS handle
  fdev_msg *end_msg;     // preallocated; taken by the last thread to stop
  fdev_reader readers[];
};

static const napi_type_tag fdev_tag = { 0x6f766c7466757365ULL, 0x726561646572732eULL };

static void set_unref (fdev_set *s) {
  if (atomic_fetch_sub(&s->refs, 1) != 1) return;
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s->end_msg);
  free(s);
}

// Queues m for the JS thread; on failure frees it and returns false (the
// threadsafe function is closing or gone: the caller must not release it).
static bool deliver (fdev_set *s, fdev_msg *m) {
  napi_status st = napi_closing;
  pthread_mutex_lock(&s->mu);
  if (!s->tsfn_dead) st = napi_call_threadsafe_function(s->tsfn, m, napi_tsfn_blocking);
  pthread_mutex_unlock(&s->mu);
  if (st != napi_ok) free(m);
  return st == napi_ok;
}

static void * reader_main (void *arg) {
  fdev_reader *r = arg;
  fdev_set *s = r->set;
  pthread_mutex_lock(&s->mu);
  while (s->gate == 0) pthread_cond_wait(&s->cv, &s->mu);
  bool run = s->gate > 0;
  pthread_mutex_unlock(&s->mu);

  int err = 0;
  bool closed = false;  // the threadsafe function went away under us
  while (run && !atomic_load(&s->stop)) {
    ssize_t n = read(r->fd, r->buf, s->buf_size);
    if (n < 0) {
      if (errno == EINTR || errno == ENOENT) continue;
      if (errno == EAGAIN) {
        struct pollfd p = { r->fd, POLLIN, 0 };
        poll(&p, 1, -1);
        continue;
      }
      err = errno;
      break;
    }
    if (n == 0) {  // never happens on /dev/fuse; do not spin if it does
      err = EIO;
      break;
    }
    fdev_msg *m = malloc(sizeof(*m) + (size_t) n);
    if (m == NULL) {
      err = ENOMEM;
      break;
    }
    m->channel = r->channel;
    m->err = 0;
    m->len = (size_t) n;
    memcpy(m->data, r->buf, (size_t) n);
    if (!deliver(s, m)) {
      closed = true;
      break;
    }
  }
  free(r->buf);
  r->buf = NULL;

  if (run) {
    int zero = 0;
    if (err != 0) atomic_compare_exchange_strong(&s->first_err, &zero, err);
    if (atomic_fetch_sub(&s->running, 1) == 1 && !closed) {
      // The last one out: everything the others read is already queued.
      fdev_msg *end = s->end_msg;
      s->end_msg = NULL;
      end->err = atomic_load(&s->first_err);
      if (!deliver(s, end)) closed = true;
    }
  }
  if (!closed) {
    pthread_mutex_lock(&s->mu);
    if (!s->tsfn_dead) napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
    pthread_mutex_unlock(&s->mu);
  }
  set_unref(s);
  return NULL;
}

// JS thread (or env == NULL while the environment is torn down).
static void call_js (napi_env env, napi_value cb, void *context, void *data) {
  fdev_msg *m = data;
  if (env == NULL || cb == NULL) {
    free(m);
    return;
  }
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[3], recv, result;
  napi_status st = napi_ok;
  napi_create_int32(env, m->channel, &argv[0]);
  if (m->channel < 0) napi_get_null(env, &argv[1]);
  else st = napi_create_buffer_copy(env, m->len, m->data, NULL, &argv[1]);
  napi_create_int32(env, m->err, &argv[2]);
  free(m);
  if (st == napi_ok) {
    napi_get_undefined(env, &recv);
    st = napi_call_function(env, recv, cb, 3, argv, &result);
  }
  if (st != napi_ok) {
    // Node would only print a warning for an exception left pending here.
    bool pending = false;
    napi_value e;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_get_and_clear_last_exception(env, &e);
      napi_fatal_exception(env, e);
    } else {
      napi_value c, msg;
      napi_create_string_utf8(env, "ERR_FUSE_READER", NAPI_AUTO_LENGTH, &c);
      napi_create_string_utf8(env, "fuse reader: could not deliver a request to JS", NAPI_AUTO_LENGTH, &msg);
      napi_create_error(env, c, msg, &e);
      napi_fatal_exception(env, e);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void tsfn_finalize (napi_env env, void *data, void *hint) {
  fdev_set *s = data;
  pthread_mutex_lock(&s->mu);
  s->tsfn_dead = true;
  pthread_mutex_unlock(&s->mu);
  set_unref(s);
}

static void handle_finalize (napi_env env, void *data, void *hint) {
  set_unref((fdev_set *) data);
}

static napi_value js_start_readers (napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t buf_size;
  bool is_array = false;
  uint32_t count = 0;
  napi_valuetype cb_type;
  if (!fdev_args(env, info, 3, argv)) return NULL;
  napi_is_array(env, argv[0], &is_array);
  if (!is_array) {
    fdev_type_error(env, "fds", "an array of numbers");
    return NULL;
  }
  napi_get_array_length(env, argv[0], &count);
  if (count < 1 || count > FDEV_MAX_READERS) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "The \"fds\" array must hold 1 to 1024 fds");
    return NULL;
  }
  if (!fdev_int(env, argv[1], "bufSize", FDEV_MIN_READ_BUFFER, 1 << 30, &buf_size)) return NULL;
  napi_typeof(env, argv[2], &cb_type);
  if (cb_type != napi_function) {
    fdev_type_error(env, "onRequest", "of type function");
    return NULL;
  }

  fdev_set *s = calloc(1, sizeof(*s) + count * sizeof(fdev_reader));
  fdev_msg *end = calloc(1, sizeof(*end));
  if (s == NULL || end == NULL) {
    free(s);
    free(end);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  s->buf_size = (size_t) buf_size;
  s->count = (int) count;
  end->channel = -1;
  s->end_msg = end;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  atomic_init(&s->stop, 0);
  atomic_init(&s->running, (int) count);
  atomic_init(&s->first_err, 0);
  atomic_init(&s->refs, (int) count + 2);

  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    int64_t fd;
    napi_get_element(env, argv[0], i, &v);
    fdev_reader *r = &s->readers[i];
    r->set = s;
    r->channel = (int) i;
    if (!fdev_int(env, v, "fds[i]", 0, INT32_MAX, &fd)) goto fail_early;
    r->fd = (int) fd;
    r->buf = malloc(s->buf_size);
    if (r->buf == NULL) {
      napi_throw_error(env, "ENOMEM", "out of memory");
      goto fail_early;
    }
  }

  napi_value name, handle;
  napi_create_string_utf8(env, "overlayts.fuseReaders", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[2], NULL, name, 0, count, s, tsfn_finalize, s, call_js, &s->tsfn) != napi_ok) {
    napi_throw_error(env, "ERR_NAPI_TSFN", "napi_create_threadsafe_function failed");
    goto fail_early;
  }
  // From here on the tsfn finalizer owns one ref of the set.

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, FDEV_STACK_SIZE);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  uint32_t started = 0;
  int create_err = 0;
  for (; started < count; started++) {
    pthread_t tid;
    create_err = pthread_create(&tid, &attr, reader_main, &s->readers[started]);
    if (create_err != 0) break;
    char tname[16];  // the kernel's limit; started < FDEV_MAX_READERS
    snprintf(tname, sizeof(tname), "fuse-rd-%u", (unsigned) (started & 0xffff));
    pthread_setname_np(tid, tname);
  }
  pthread_attr_destroy(&attr);

  pthread_mutex_lock(&s->mu);
  s->gate = create_err == 0 ? 1 : -1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);

  if (create_err != 0) {
    // The started threads release their share and exit; release the rest here.
    for (uint32_t i = started; i < count; i++) {
      free(s->readers[i].buf);
      s->readers[i].buf = NULL;
      napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
      set_unref(s);
    }
    set_unref(s);  // the JS handle that will not exist
    fdev_throw(env, create_err, "pthread_create", NULL, NULL);
    return NULL;
  }

  if (napi_create_external(env, s, handle_finalize, NULL, &handle) != napi_ok) {
    set_unref(s);
    napi_throw_error(env, "ERR_NAPI_EXTERNAL", "napi_create_external failed");
    return NULL;
  }
  napi_type_tag_object(env, handle, &fdev_tag);
  return handle;

fail_early:
  for (uint32_t i = 0; i < count; i++) free(s->readers[i].buf);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s->end_msg);
  free(s);
  return NULL;
}

static napi_value js_stop_readers (napi_env env, napi_callback_info info) {
  napi_value argv[1];
  napi_valuetype type;
  bool tagged = false;
  void *data = NULL;
  if (!fdev_args(env, info, 1, argv)) return NULL;
  napi_typeof(env, argv[0], &type);
  if (type == napi_external) napi_check_object_type_tag(env, argv[0], &fdev_tag, &tagged);
  if (!tagged || napi_get_value_external(env, argv[0], &data) != napi_ok) {
    fdev_type_error(env, "handle", "a handle returned by fuseStartReaders()");
    return NULL;
  }
  fdev_set *s = data;
  atomic_store(&s->stop, 1);
  // tsfn_dead is only written on this thread: no lock needed to read it here.
  if (!s->tsfn_dead && !s->unrefd) {
    napi_unref_threadsafe_function(env, s->tsfn);
    s->unrefd = true;
  }
  return NULL;
}

// ---------------------------------------------------------------------------
// The poll reader: the device fd (made O_NONBLOCK) watched by a uv_poll_t on
// the JS thread's own event loop. When the fd is readable, requests are read
// right there until EAGAIN (at most POLL_BATCH per wake-up, so timers and
// I/O completions still get their turn) and each is handed to onRequest on
// this same thread through napi_make_callback (so promise continuations run
// after it, as after any callback). No thread hop: a request costs one
// wake-up of the JS thread instead of a reader thread's plus the JS thread's.

#define POLL_BATCH 64

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref cb;
  napi_async_context ctx;
  int fd;
  size_t size;
  char *buf;
  bool stopped;
} fdev_poller;

static void poller_closed (uv_handle_t *h) {
  fdev_poller *p = (fdev_poller *) h->data;
  free(p->buf);
  free(p);
}

static void poller_call (fdev_poller *p, napi_value *argv) {
  napi_env env = p->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv, result;
  napi_get_reference_value(env, p->cb, &cb);
  napi_get_global(env, &recv); // MakeCallback wants an object receiver
  if (napi_make_callback(env, p->ctx, recv, cb, 3, argv, &result) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
      napi_fatal_exception(env, e);
    }
  }
  napi_close_handle_scope(env, scope);
}

// The end: the poll stops before the callback, which may close the fd;
// then the poller lets go of everything (freed once libuv closed it).
static void poller_end (fdev_poller *p, int err) {
  p->stopped = true;
  uv_poll_stop(&p->poll);
  napi_env env = p->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[3];
  napi_create_int32(env, -1, &argv[0]);
  napi_get_null(env, &argv[1]);
  napi_create_int32(env, err, &argv[2]);
  poller_call(p, argv);
  napi_close_handle_scope(env, scope);
  napi_delete_reference(env, p->cb);
  napi_async_destroy(env, p->ctx);
  uv_close((uv_handle_t *) &p->poll, poller_closed);
}

static void poller_readable (uv_poll_t *h, int status, int events) {
  fdev_poller *p = (fdev_poller *) h->data;
  (void) events;
  if (p->stopped) return;
  // An error status (POLLERR: the connection is gone) is read through, so
  // the end reports the device's own errno (ENODEV after an unmount).
  for (int i = 0; i < POLL_BATCH && !p->stopped; i++) {
    ssize_t n = read(p->fd, p->buf, p->size);
    if (n < 0) {
      if (errno == EINTR || errno == ENOENT) continue;
      if (errno == EAGAIN) { if (status < 0) poller_end(p, -status); return; }
      poller_end(p, errno);
      return;
    }
    if (n == 0) { poller_end(p, EIO); return; }
    napi_env env = p->env;
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    napi_value argv[3];
    void *copy;
    napi_create_int32(env, 0, &argv[0]);
    napi_create_buffer_copy(env, (size_t) n, p->buf, &copy, &argv[1]);
    napi_create_int32(env, 0, &argv[2]);
    poller_call(p, argv);
    napi_close_handle_scope(env, scope);
  }
}

// fuseStartPoll(fd, bufSize, onRequest): as fuseStartReaders with one fd,
// but on the JS thread (see above); channel is always 0. The fd is switched
// to O_NONBLOCK. Reading stops only when the connection ends.
static napi_value js_start_poll (napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t fd, size;
  if (!fdev_args(env, info, 3, argv)) return NULL;
  if (!fdev_int(env, argv[0], "fd", 0, INT_MAX, &fd) || !fdev_int(env, argv[1], "bufSize", 8192, 64 << 20, &size)) return NULL;
  napi_valuetype t;
  napi_typeof(env, argv[2], &t);
  if (t != napi_function) { fdev_type_error(env, "onRequest", "a function"); return NULL; }
  int fl = fcntl((int) fd, F_GETFL);
  if (fl < 0 || fcntl((int) fd, F_SETFL, fl | O_NONBLOCK) < 0) { fdev_throw(env, errno, "fcntl", NULL, NULL); return NULL; }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) { napi_throw_error(env, NULL, "no event loop"); return NULL; }
  fdev_poller *p = calloc(1, sizeof(*p));
  char *buf = malloc((size_t) size);
  if (p == NULL || buf == NULL) { free(p); free(buf); fdev_throw(env, ENOMEM, "malloc", NULL, NULL); return NULL; }
  p->env = env;
  p->fd = (int) fd;
  p->size = (size_t) size;
  p->buf = buf;
  napi_value name;
  napi_create_string_utf8(env, "overlayts:fuse-poll", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &p->ctx);
  napi_create_reference(env, argv[2], 1, &p->cb);
  if (uv_poll_init(loop, &p->poll, (int) fd) != 0) {
    napi_delete_reference(env, p->cb);
    napi_async_destroy(env, p->ctx);
    free(buf); free(p);
    fdev_throw(env, EINVAL, "uv_poll_init", NULL, NULL);
    return NULL;
  }
  p->poll.data = p;
  uv_poll_start(&p->poll, UV_READABLE, poller_readable);
  return NULL;
}

// ---------------------------------------------------------------------------


void fuse_dev_register (napi_env env, napi_value exports) {
  export_fn(env, exports, "fuseOpenDevice", js_open_device);
  export_fn(env, exports, "fuseCloneDevice", js_clone_device);
  export_fn(env, exports, "fuseSocketpair", js_socketpair);
  export_fn(env, exports, "fuseRecvFd", js_recv_fd);
  export_fn(env, exports, "mount", js_mount);
  export_fn(env, exports, "umount2", js_umount2);
  export_fn(env, exports, "fuseBackingOpen", js_backing_open);
  export_fn(env, exports, "fuseBackingClose", js_backing_close);
  export_fn(env, exports, "fuseStartReaders", js_start_readers);
  export_fn(env, exports, "fuseStopReaders", js_stop_readers);
  export_fn(env, exports, "fuseStartPoll", js_start_poll);
  export_int(env, exports, "MS_RDONLY", MS_RDONLY);
  export_int(env, exports, "MS_NOSUID", MS_NOSUID);
  export_int(env, exports, "MS_NODEV", MS_NODEV);
  export_int(env, exports, "MS_NOEXEC", MS_NOEXEC);
  export_int(env, exports, "MS_SYNCHRONOUS", MS_SYNCHRONOUS);
  export_int(env, exports, "MS_DIRSYNC", MS_DIRSYNC);
  export_int(env, exports, "MS_NOATIME", MS_NOATIME);
  export_int(env, exports, "MS_NODIRATIME", MS_NODIRATIME);
  export_int(env, exports, "MNT_FORCE", MNT_FORCE);
  export_int(env, exports, "MNT_DETACH", MNT_DETACH);
  export_int(env, exports, "UMOUNT_NOFOLLOW", UMOUNT_NOFOLLOW);
}
