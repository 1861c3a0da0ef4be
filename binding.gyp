{
  "targets": [
    {
      "target_name": "tftp_pump",
      "sources": ["src/serve/tftp/native/pump.c"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lpthread"]
    }
  ]
}
