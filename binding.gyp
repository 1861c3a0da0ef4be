{
  "target_defaults": {
    "defines": ["_GNU_SOURCE"],
    "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"]
  },
  "targets": [
    {
      "target_name": "tftp_engine",
      "sources": [
        "src/serve/tftp/native/binding.c",
        "src/serve/tftp/native/timer-heap.c",
        "src/serve/tftp/native/transfer.c",
        "src/serve/tftp/native/worker.c"
      ],
      "libraries": ["-lpthread"]
    },
    {
      "target_name": "http_sendfile",
      "sources": ["src/serve/http/native/sendfile.c"]
    }
  ]
}
