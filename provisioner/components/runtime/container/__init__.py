"""The runc-like core of the container runtime: spec (what to run), launcher (namespaces, mounts,
pivot_root, capabilities, exec), cgroups (v1 and v2), shim (per-container monitor) and api
(start/state/kill/stop/exec/delete). Imports nothing on purpose, to keep the shim's start fast.
"""
