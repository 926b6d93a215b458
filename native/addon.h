// addon.h: what both halves of the addon (overlayts_native.c, fuse_dev.c)
// share: publishing functions and integer constants on the module's exports.
#ifndef OVERLAYTS_ADDON_H
#define OVERLAYTS_ADDON_H
#include <node_api.h>
#include <stdint.h>

static inline void export_fn (napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

static inline void export_int (napi_env env, napi_value exports, const char *name, int64_t value) {
  napi_value v;
  napi_create_int64(env, value, &v);
  napi_set_named_property(env, exports, name, v);
}

// fuse_dev.c's functions, registered by overlayts_native.c's module init.
void fuse_dev_register (napi_env env, napi_value exports);
// fuse_uring.c's functions (FUSE over io_uring), registered the same way.
void fuse_uring_register (napi_env env, napi_value exports);

#endif
