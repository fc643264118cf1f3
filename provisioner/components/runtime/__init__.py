"""The container runtime (`provisioner-runtime`): daemon, CLI, images, build, network and the
runc-like core in `container/`. See README.md in this directory for the design and contracts.

Deliberately imports nothing: the per-container shim is started as
`python -m provisioner.components.runtime.container.shim` and must start fast.
"""
