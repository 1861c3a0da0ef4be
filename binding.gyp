{
  "targets": [
    {
      "target_name": "tftp_engine",
      "sources": [
        "src/serve/tftp/native/binding.c",
        "src/serve/tftp/native/timer-heap.c",
        "src/serve/tftp/native/transfer.c",
        "src/serve/tftp/native/worker.c"
      ],
      "defines": ["_GNU_SOURCE"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lpthread"]
    }
  ]
}
