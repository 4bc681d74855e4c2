{
  "targets": [
    {
      "target_name": "dockd_aead",
      "sources": ["src/crypto/aead.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
