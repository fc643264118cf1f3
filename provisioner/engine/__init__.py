"""The SSH engine: pyinfra (paramiko underneath) driving the cluster's hosts in parallel.

Phases describe what a host must hold; this package turns that into pyinfra operations,
runs them over SSH with pinned host keys, and reports per host what changed.
"""
