// fuse_uring: FUSE over io_uring (Linux 6.14+, CONFIG_FUSE_IO_URING, fuse
// module parameter enable_uring=1), on the JS thread's own event loop.
//
// Contract. As with the device reader (fuse_dev.c), this file only moves
// bytes: requests are handed to JS in exactly the layout read(2) on /dev/fuse
// gives (fuse_in_header, the op's header, the payload), and JS answers with
// exactly what it would write(2) there (fuse_out_header + body). Decoding and
// encoding stay in TypeScript. Everything runs on the JS thread: no threads.
//
//   fuseUringQueues() -> n             the queues the kernel wants: one per
//                                      possible CPU (get_nprocs_conf())
//   fuseUringSetup(devFd, payloadSize) -> handle
//       One io_uring (SQE128) and, per queue, QUEUE_DEPTH entries (a 288-byte
//       header buffer and a payloadSize buffer; payloadSize >= the kernel's
//       max(max_write, max_pages * PAGE_SIZE)). Registers nothing, so it may
//       (and must) run before INIT is answered: a failure here (io_uring
//       disabled, an old kernel) throws, and INIT then does not accept
//       FUSE_OVER_IO_URING.
//   fuseUringStart(handle, onRequest) -> errno
//       After INIT's reply accepting FUSE_OVER_IO_URING is written: submits
//       FUSE_IO_URING_CMD_REGISTER for every entry and watches the ring's fd
//       (uv_poll_t) on the JS loop. Returns 0, or the errno of a
//       registration the kernel refused at submission (then the kernel has
//       turned io_uring off for this connection and every request comes
//       through the device; the caller stops the ring). Until every queue
//       has an entry the kernel holds requests back; after that it sends
//       them here, except FORGET, INTERRUPT and INIT, which stay on the
//       device (the device reader must keep running).
//       onRequest(entry, req, 0): one request (a new Buffer) in ring entry
//       `entry`; answer it with fuseUringCommit exactly once.
//       onRequest(-1, null, errno): an entry ended with errno (ENOTCONN or
//       ECANCELED when the connection ends; anything else is a failure).
//   fuseUringCommit(handle, entry, reply)
//       Copies the reply into the entry's buffers (header, then body as the
//       payload) and submits FUSE_IO_URING_CMD_COMMIT_AND_FETCH, which
//       answers the request and gives the entry back for the next one.
//       Ignored once stopped; throws only for bad arguments.
//   fuseUringStop(handle)
//       Stops watching and closes the ring (the kernel cancels what it
//       holds). Call it once the connection has ended (the device reader
//       saw ENODEV/ECONNABORTED): the buffers are freed with the ring.
//
// The kernel runs the copy of a request into an entry as task work of the
// task that submitted the entry's command: here always the JS thread, which
// it interrupts like a signal would (libuv retries epoll_wait). A commit
// whose fetch finds a request waiting completes it in the same syscall, so a
// busy loop reaps it without another wake-up.
//
// Protocol structures from the kernel's include/uapi/linux/fuse.h (7.42,
// Linux 6.14) and fs/fuse/dev_uring.c: Debian's linux-libc-dev (6.1) predates
// them. The io_uring ABI (IORING_OP_URING_CMD, SQE128) is in 6.1's headers.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <node_api.h>
#include <uv.h>

#include "addon.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

// include/uapi/linux/fuse.h (7.42)
#define FUSE_URING_IN_OUT_HEADER_SZ 128
#define FUSE_URING_OP_IN_OUT_SZ 128
struct fuse_uring_ent_in_out {
  uint64_t flags;
  uint64_t commit_id;   // the request's unique: echoed in fuse_uring_cmd_req
  uint32_t payload_sz;  // bytes of payload, in either direction
  uint32_t padding;
  uint64_t reserved;
};
struct fuse_uring_req_header {
  char in_out[FUSE_URING_IN_OUT_HEADER_SZ];  // fuse_in_header / fuse_out_header
  char op_in[FUSE_URING_OP_IN_OUT_SZ];       // the op's own header (in_args[0])
  struct fuse_uring_ent_in_out ring_ent_in_out;
};
enum { FUSE_IO_URING_CMD_REGISTER = 1, FUSE_IO_URING_CMD_COMMIT_AND_FETCH = 2 };
struct fuse_uring_cmd_req {  // in the SQE128's 80-byte command area
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;
  uint8_t padding[6];
};
_Static_assert(sizeof(struct fuse_uring_req_header) == 288, "fuse_uring_req_header");

#define IN_HEADER_SIZE 40
#define OUT_HEADER_SIZE 16
#define QUEUE_DEPTH_SMALL 8   // entries per queue up to 8 queues
#define QUEUE_DEPTH_LARGE 2   // beyond: the payload buffers would add up
#define REAP_BATCH 64

typedef struct {
  struct fuse_uring_req_header *hdr;
  char *payload;
  struct iovec iov[2];
  uint64_t commit_id;
  uint16_t qid;
  bool in_userspace;  // holds a request JS has not committed
  bool dead;          // its command ended (error CQE)
} uring_entry;

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref cb;
  napi_async_context ctx;
  bool started, stopped;
  bool closed;   // libuv let go of the poll handle (resources released)
  bool orphan;   // the JS handle was collected first: free on close
  int ring_fd, dev_fd;
  unsigned queues, depth, count;
  size_t payload_size;
  // SQ ring
  void *sq_map, *cq_map;
  size_t sq_map_len, cq_map_len;
  struct io_uring_sqe *sqes;  // 128-byte entries (SQE128)
  size_t sqes_len;
  _Atomic unsigned *sq_head, *sq_tail;
  unsigned *sq_mask, *sq_array;
  _Atomic unsigned *cq_head, *cq_tail;
  unsigned *cq_mask;
  struct io_uring_cqe *cqes;
  uring_entry *entries;
} uring;

static void uring_finalize (napi_env env, void *data, void *hint);

static const napi_type_tag uring_tag = { 0x6f766c7475726e67ULL, 0x66757365752e7231ULL };

static void uring_throw (napi_env env, int err, const char *what) {
  napi_value code, msg, e, v;
  const char *name = uv_err_name(-err);
  char text[200];
  snprintf(text, sizeof(text), "%s: %s, %s", name, uv_strerror(-err), what);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &e);
  napi_create_int32(env, -err, &v);
  napi_set_named_property(env, e, "errno", v);
  napi_set_named_property(env, e, "code", code);
  napi_throw(env, e);
}

static int sys_setup (unsigned entries, struct io_uring_params *p) {
  return (int) syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter (int fd, unsigned submit, unsigned wait, unsigned flags) {
  return (int) syscall(__NR_io_uring_enter, fd, submit, wait, flags, NULL, 0);
}

// Frees the ring and the buffers; the struct itself goes with the JS handle.
static void uring_release (uring *u) {
  if (u->sqes != NULL && u->sqes != MAP_FAILED) munmap(u->sqes, u->sqes_len);
  if (u->cq_map != NULL && u->cq_map != MAP_FAILED && u->cq_map != u->sq_map) munmap(u->cq_map, u->cq_map_len);
  if (u->sq_map != NULL && u->sq_map != MAP_FAILED) munmap(u->sq_map, u->sq_map_len);
  if (u->ring_fd >= 0) close(u->ring_fd);
  if (u->entries != NULL) {
    for (unsigned i = 0; i < u->count; i++) {
      free(u->entries[i].hdr);
      free(u->entries[i].payload);
    }
    free(u->entries);
  }
  u->entries = NULL;
  u->sqes = NULL;
  u->sq_map = u->cq_map = NULL;
  u->ring_fd = -1;
}

static void uring_free (uring *u) {
  uring_release(u);
  free(u);
}

// Queues one URING_CMD for entry i and submits it. 0 or -errno.
static int uring_submit_cmd (uring *u, unsigned i, uint32_t cmd_op) {
  unsigned tail = atomic_load_explicit(u->sq_tail, memory_order_relaxed);
  unsigned head = atomic_load_explicit(u->sq_head, memory_order_acquire);
  if (tail - head > *u->sq_mask) return -EBUSY;  // never: one command per entry at most
  unsigned idx = tail & *u->sq_mask;
  struct io_uring_sqe *sqe = (struct io_uring_sqe *) ((char *) u->sqes + (size_t) idx * 128);
  memset(sqe, 0, 128);
  uring_entry *e = &u->entries[i];
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = u->dev_fd;
  sqe->cmd_op = cmd_op;
  sqe->addr = (uint64_t) (uintptr_t) e->iov;
  sqe->len = 2;
  sqe->user_data = i;
  struct fuse_uring_cmd_req *req = (struct fuse_uring_cmd_req *) sqe->cmd;
  req->qid = e->qid;
  req->commit_id = cmd_op == FUSE_IO_URING_CMD_COMMIT_AND_FETCH ? e->commit_id : 0;
  u->sq_array[idx] = idx;
  atomic_store_explicit(u->sq_tail, tail + 1, memory_order_release);
  for (;;) {
    int r = sys_enter(u->ring_fd, 1, 0, 0);
    if (r >= 0) return 0;
    if (errno != EINTR && errno != EAGAIN) return -errno;
  }
}

static void uring_call (uring *u, int entry, napi_value buf, int err) {
  napi_env env = u->env;
  napi_value argv[3], cb, recv, result;
  napi_create_int32(env, entry, &argv[0]);
  if (buf != NULL) argv[1] = buf;
  else napi_get_null(env, &argv[1]);
  napi_create_int32(env, err, &argv[2]);
  napi_get_reference_value(env, u->cb, &cb);
  napi_get_global(env, &recv);
  if (napi_make_callback(env, u->ctx, recv, cb, 3, argv, &result) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
      napi_fatal_exception(env, e);
    }
  }
}

// One completion: a request in entry i (res 0), or the end of its command.
static void uring_complete (uring *u, unsigned i, int res) {
  uring_entry *e = &u->entries[i];
  napi_env env = u->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  if (res < 0) {
    e->dead = true;
    uring_call(u, -1, NULL, -res);
  } else {
    e->in_userspace = true;
    e->commit_id = e->hdr->ring_ent_in_out.commit_id;
    uint32_t len, payload = e->hdr->ring_ent_in_out.payload_sz;
    memcpy(&len, e->hdr->in_out, 4);
    size_t op = (size_t) len - IN_HEADER_SIZE - payload;
    if (len < IN_HEADER_SIZE || payload > u->payload_size || (size_t) len < IN_HEADER_SIZE + (size_t) payload || op > FUSE_URING_OP_IN_OUT_SZ) {
      // Not a layout this code knows: answer EIO rather than guess.
      char out[OUT_HEADER_SIZE];
      uint32_t olen = OUT_HEADER_SIZE;
      int32_t err = -EIO;
      memcpy(out, &olen, 4);
      memcpy(out + 4, &err, 4);
      memcpy(out + 8, e->hdr->in_out + 8, 8);
      memcpy(e->hdr->in_out, out, OUT_HEADER_SIZE);
      e->hdr->ring_ent_in_out.payload_sz = 0;
      e->in_userspace = false;
      uring_submit_cmd(u, i, FUSE_IO_URING_CMD_COMMIT_AND_FETCH);
    } else {
      void *data;
      napi_value buf;
      if (napi_create_buffer(env, len, &data, &buf) == napi_ok) {
        memcpy(data, e->hdr->in_out, IN_HEADER_SIZE);
        memcpy((char *) data + IN_HEADER_SIZE, e->hdr->op_in, op);
        memcpy((char *) data + IN_HEADER_SIZE + op, e->payload, payload);
        uring_call(u, (int) i, buf, 0);
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

static void uring_readable (uv_poll_t *h, int status, int events) {
  uring *u = h->data;
  (void) status;
  (void) events;
  for (int n = 0; n < REAP_BATCH && !u->stopped; n++) {
    unsigned head = atomic_load_explicit(u->cq_head, memory_order_relaxed);
    if (head == atomic_load_explicit(u->cq_tail, memory_order_acquire)) return;
    struct io_uring_cqe *cqe = &u->cqes[head & *u->cq_mask];
    uint64_t i = cqe->user_data;
    int res = cqe->res;
    atomic_store_explicit(u->cq_head, head + 1, memory_order_release);
    if (i < u->count) uring_complete(u, (unsigned) i, res);
  }
}

static uring * uring_of (napi_env env, napi_value v) {
  napi_valuetype t;
  bool tagged = false;
  void *data = NULL;
  napi_typeof(env, v, &t);
  if (t == napi_external) napi_check_object_type_tag(env, v, &uring_tag, &tagged);
  if (!tagged || napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"handle\" argument must be a handle returned by fuseUringSetup()");
    return NULL;
  }
  return data;
}

static bool get_args (napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "missing arguments");
    return false;
  }
  return true;
}

static bool get_u32 (napi_env env, napi_value v, const char *name, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) != napi_ok) {
    char msg[100];
    snprintf(msg, sizeof(msg), "The \"%s\" argument must be of type number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  return true;
}

static napi_value js_queues (napi_env env, napi_callback_info info) {
  (void) info;
  napi_value r;
  napi_create_uint32(env, (uint32_t) get_nprocs_conf(), &r);
  return r;
}

static napi_value js_setup (napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint32_t dev_fd, payload;
  if (!get_args(env, info, 2, argv) || !get_u32(env, argv[0], "devFd", &dev_fd) || !get_u32(env, argv[1], "payloadSize", &payload)) return NULL;
  if (payload < 8192) { napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "payloadSize must be >= 8192"); return NULL; }
  uring *u = calloc(1, sizeof(*u));
  if (u == NULL) { uring_throw(env, ENOMEM, "calloc"); return NULL; }
  u->ring_fd = -1;
  u->dev_fd = (int) dev_fd;
  u->queues = (unsigned) get_nprocs_conf();
  if (u->queues < 1) u->queues = 1;
  u->depth = u->queues <= 8 ? QUEUE_DEPTH_SMALL : QUEUE_DEPTH_LARGE;
  u->count = u->queues * u->depth;
  u->payload_size = payload;

  struct io_uring_params p;
  memset(&p, 0, sizeof(p));
  p.flags = IORING_SETUP_SQE128;
  u->ring_fd = sys_setup(u->count, &p);
  if (u->ring_fd < 0) { int err = errno; uring_free(u); uring_throw(env, err, "io_uring_setup"); return NULL; }
  u->sq_map_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  u->cq_map_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  if (p.features & IORING_FEAT_SINGLE_MMAP) {
    if (u->cq_map_len > u->sq_map_len) u->sq_map_len = u->cq_map_len;
    u->cq_map_len = u->sq_map_len;
  }
  u->sq_map = mmap(NULL, u->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->ring_fd, IORING_OFF_SQ_RING);
  if (u->sq_map == MAP_FAILED) goto fail;
  if (p.features & IORING_FEAT_SINGLE_MMAP) u->cq_map = u->sq_map;
  else {
    u->cq_map = mmap(NULL, u->cq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->ring_fd, IORING_OFF_CQ_RING);
    if (u->cq_map == MAP_FAILED) goto fail;
  }
  u->sqes_len = (size_t) p.sq_entries * 128;
  u->sqes = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->ring_fd, IORING_OFF_SQES);
  if (u->sqes == MAP_FAILED) goto fail;
  char *sq = u->sq_map, *cq = u->cq_map;
  u->sq_head = (_Atomic unsigned *) (sq + p.sq_off.head);
  u->sq_tail = (_Atomic unsigned *) (sq + p.sq_off.tail);
  u->sq_mask = (unsigned *) (sq + p.sq_off.ring_mask);
  u->sq_array = (unsigned *) (sq + p.sq_off.array);
  u->cq_head = (_Atomic unsigned *) (cq + p.cq_off.head);
  u->cq_tail = (_Atomic unsigned *) (cq + p.cq_off.tail);
  u->cq_mask = (unsigned *) (cq + p.cq_off.ring_mask);
  u->cqes = (struct io_uring_cqe *) (cq + p.cq_off.cqes);

  u->entries = calloc(u->count, sizeof(uring_entry));
  if (u->entries == NULL) { errno = ENOMEM; goto fail; }
  for (unsigned i = 0; i < u->count; i++) {
    uring_entry *e = &u->entries[i];
    e->qid = (uint16_t) (i / u->depth);
    if (posix_memalign((void **) &e->hdr, 64, sizeof(*e->hdr)) != 0) { e->hdr = NULL; errno = ENOMEM; goto fail; }
    memset(e->hdr, 0, sizeof(*e->hdr));
    e->payload = malloc(payload);
    if (e->payload == NULL) { errno = ENOMEM; goto fail; }
    e->iov[0].iov_base = e->hdr;
    e->iov[0].iov_len = sizeof(*e->hdr);
    e->iov[1].iov_base = e->payload;
    e->iov[1].iov_len = payload;
  }
  napi_value handle;
  if (napi_create_external(env, u, uring_finalize, NULL, &handle) != napi_ok) { errno = ENOMEM; goto fail; }
  napi_type_tag_object(env, handle, &uring_tag);
  return handle;
fail: {
    int err = errno;
    uring_free(u);
    uring_throw(env, err, "io_uring setup");
    return NULL;
  }
}

static napi_value js_start (napi_env env, napi_callback_info info) {
  napi_value argv[2], r;
  if (!get_args(env, info, 2, argv)) return NULL;
  uring *u = uring_of(env, argv[0]);
  if (u == NULL) return NULL;
  napi_valuetype t;
  napi_typeof(env, argv[1], &t);
  if (t != napi_function) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"onRequest\" argument must be a function"); return NULL; }
  if (u->started) { napi_throw_error(env, "ERR_INVALID_STATE", "fuseUringStart: already started"); return NULL; }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &u->poll, u->ring_fd) != 0) {
    uring_throw(env, EINVAL, "uv_poll_init");
    return NULL;
  }
  u->started = true;
  u->env = env;
  u->poll.data = u;
  napi_value name;
  napi_create_string_utf8(env, "overlayts:fuse-uring", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &u->ctx);
  napi_create_reference(env, argv[1], 1, &u->cb);

  int err = 0;
  for (unsigned i = 0; i < u->count && err == 0; i++) err = -uring_submit_cmd(u, i, FUSE_IO_URING_CMD_REGISTER);
  // A refused registration completes at once, in the submitting call: look
  // (without consuming) for an error among what is already there.
  if (err == 0) {
    unsigned head = atomic_load_explicit(u->cq_head, memory_order_relaxed);
    unsigned tail = atomic_load_explicit(u->cq_tail, memory_order_acquire);
    for (; head != tail && err == 0; head++) {
      int res = u->cqes[head & *u->cq_mask].res;
      if (res < 0) err = -res;
    }
  }
  uv_poll_start(&u->poll, UV_READABLE, uring_readable);
  napi_create_int32(env, err, &r);
  return r;
}

static napi_value js_commit (napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint32_t i;
  if (!get_args(env, info, 3, argv)) return NULL;
  uring *u = uring_of(env, argv[0]);
  if (u == NULL || !get_u32(env, argv[1], "entry", &i)) return NULL;
  void *data;
  size_t len;
  bool is_buf = false;
  napi_is_buffer(env, argv[2], &is_buf);
  if (!is_buf || napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok || len < OUT_HEADER_SIZE) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"reply\" argument must be a Buffer holding a fuse_out_header");
    return NULL;
  }
  if (i >= u->count) { napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "no such ring entry"); return NULL; }
  if (u->stopped) return NULL;
  uring_entry *e = &u->entries[i];
  if (e->dead || !e->in_userspace) return NULL;
  e->in_userspace = false;
  size_t body = len - OUT_HEADER_SIZE;
  memcpy(e->hdr->in_out, data, OUT_HEADER_SIZE);
  if (body > u->payload_size) {
    // Larger than the kernel could have asked for: answer EIO instead.
    int32_t eio = -EIO;
    uint32_t olen = OUT_HEADER_SIZE;
    memcpy(e->hdr->in_out, &olen, 4);
    memcpy(e->hdr->in_out + 4, &eio, 4);
    body = 0;
  }
  memcpy(e->payload, (char *) data + OUT_HEADER_SIZE, body);
  e->hdr->ring_ent_in_out.payload_sz = (uint32_t) body;
  int err = uring_submit_cmd(u, i, FUSE_IO_URING_CMD_COMMIT_AND_FETCH);
  if (err < 0) {
    // The entry is lost to the kernel; report it as ended.
    e->dead = true;
    uring_call(u, -1, NULL, -err);
  }
  return NULL;
}

static void uring_closed (uv_handle_t *h) {
  uring *u = h->data;
  uring_release(u);
  u->closed = true;
  if (u->orphan) free(u);
}

// The JS handle was collected: a running ring (never, while its session
// holds the handle) is left alone; otherwise everything goes.
static void uring_finalize (napi_env env, void *data, void *hint) {
  (void) env;
  (void) hint;
  uring *u = data;
  if (!u->started) uring_free(u);
  else if (u->closed) free(u);
  else u->orphan = true;
}

static napi_value js_stop (napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  uring *u = uring_of(env, argv[0]);
  if (u == NULL || u->stopped) return NULL;
  u->stopped = true;
  if (u->started) {
    uv_poll_stop(&u->poll);
    napi_delete_reference(env, u->cb);
    napi_async_destroy(env, u->ctx);
    // The ring fd is closed (and the buffers freed) once libuv let go of it.
    uv_close((uv_handle_t *) &u->poll, uring_closed);
  } else {
    uring_release(u);
  }
  return NULL;
}

void fuse_uring_register (napi_env env, napi_value exports) {
  export_fn(env, exports, "fuseUringQueues", js_queues);
  export_fn(env, exports, "fuseUringSetup", js_setup);
  export_fn(env, exports, "fuseUringStart", js_start);
  export_fn(env, exports, "fuseUringCommit", js_commit);
  export_fn(env, exports, "fuseUringStop", js_stop);
}
