"""The container runtime (`provisioner-runtime`): daemon, CLI, images, build, network and the
runc-like core in `container/`. See README.md in this directory for the design and contracts.

Deliberately imports nothing: the monitor server every container's monitor is forked from is
started as `python -S -m provisioner.components.runtime.container.monitor_server`, and what it
imports every monitor shares.
"""
