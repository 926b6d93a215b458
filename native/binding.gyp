{
  "targets": [{
    "target_name": "overlayts_native",
    "sources": ["overlayts_native.c"],
    "cflags": ["-O2", "-Wall", "-D_GNU_SOURCE"]
  }]
}
