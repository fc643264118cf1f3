"""runtime/docker: Docker's Engine REST API served from the runtime daemon's own services.

The daemon (daemon/main.py) opens a second unix socket (`--docker-socket`) whose application is
built by `server.make_docker_app`; every route here translates Docker's request and answer shapes
to and from the daemon's ContainerService and ImageOperations, so docker-py and the docker CLI
drive the same containers as `provisioner-runtime` and the kubelet. Module map:

- `server.py`: the application, version prefixes (`/v1.43/...`), Docker's error bodies, ping,
  version, info
- `routing.py`: the route table every module adds to (each route also under `/v{version}`)
- `containers.py`: create, start, stop, restart, kill, wait, remove, list, inspect, logs
- `translate.py`: Docker's create body -> the daemon's; records -> Docker's inspect/list JSON
- `supervisor.py`: restart policies and AutoRemove (Docker-only settings kept beside each record)
- `images.py`: list, inspect, tag, remove, pull through /images/create
- `execs.py`: exec create/start/inspect over a hijacked connection
- `frames.py`: Docker's multiplexed stream framing and the hijacked (101 Upgrade) answer
"""
