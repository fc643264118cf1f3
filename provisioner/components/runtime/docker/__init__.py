"""runtime/docker: Docker's Engine REST API served from the runtime daemon's own services.

The daemon (daemon/main.py) opens a second unix socket (`--docker-socket`, by default docker.sock
beside its own socket) served by `listener.listen`; every route translates Docker's request and
answer shapes to and from the daemon's ContainerService and ImageOperations, so docker-py, the
docker CLI and Compose drive the same containers as `provisioner-runtime` and the kubelet
(whose pod members the Docker API does not list). Module map:

- `listener.py`: the socket; keeps hijacked connections open after the client half-closes
- `server.py`: the application, Docker's error bodies, ping, version, info
- `routing.py`: the route table (each route also under `/v1.NN`), app keys, JSON answers
- `containers.py`: create, start, stop, restart, kill, wait, rename, rm, list, inspect, logs,
  attach
- `translate.py`: Docker's create body -> the daemon's; records -> Docker's inspect/list JSON
- `supervisor.py`: restart policies, AutoRemove, Tty (Docker-only settings beside each record)
- `execs.py`: exec create/start/inspect/resize over a hijacked connection (stdin, TTY)
- `attaching.py`: attach to a container's own stdin and terminal (its console), resize
- `frames.py`: Docker's multiplexed stream framing and the 101 UPGRADED answer
- `images.py`, `transfer.py`, `building.py`: image list/inspect/tag/rm/pull/push/login,
  save/load/history, build
- `inspection.py`: top, stats, container and image prune
- `pausing.py`: pause/unpause (cgroup freezer)
- `archive.py`, `archive_helper.py`: `docker cp` inside the container's mount namespace
- `volumes.py`, `networks.py`: named volumes; user-defined networks (names through hosts files)
- `events.py`: the event stream of what happened through this API
"""
