"""The runc-like core of the container runtime: spec (what to run), launcher (namespaces, mounts,
pivot_root, capabilities, exec), cgroups (v1 and v2), shim (per-container monitor), the monitor
server that forks monitors, and api (start/state/kill/stop/exec/delete). Imports nothing on
purpose: the monitor server imports only what monitors need.
"""
