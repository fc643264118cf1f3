"""runtime/daemon: the runtime daemon (state, containers, pods, images, logs) and its HTTP API
over a unix socket. `main.serve` runs it; `provisioner-runtime daemon` is its command."""
