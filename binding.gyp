{
  "targets": [
    {
      "target_name": "duogate",
      "sources": [
        "host/addon/addon.cc",
        "host/addon/netif.cc",
        "host/addon/sockets.cc",
        "host/addon/poll.cc",
        "host/addon/carp6.cc"
      ],
      # Exceptions on: every failed syscall becomes a thrown JS Error (style.md 2b).
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"]
    }
  ]
}
