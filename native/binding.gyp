{
  "targets": [{
    "target_name": "overlayts_native",
    "sources": ["overlayts_native.c", "fuse_dev.c", "fuse_uring.c"],
    "cflags": ["-O2", "-Wall", "-D_GNU_SOURCE", "-pthread"],
    "ldflags": ["-pthread"]
  }]
}
