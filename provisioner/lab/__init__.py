"""Local lab hosts for trying and testing the provisioner without real machines.

Two providers give the same inventory shape: `nspawn` (default) boots Debian hosts as
systemd-nspawn machines on a private bridge on this machine; `vagrant` drives the repo's
Vagrantfile through python-vagrant. Modules: rootfs (cached Debian root), network (bridge and
addresses), machine (one nspawn host), lab (a named lab and its state), inventory (the file it
writes), vagrant (the Vagrant provider), cli (`provisioner lab ...`).

Python API (used by the e2e fixtures):
    Lab(name, state_root=None).up(nodes=3) -> list[LabHost]; .down(); .status();
    .inventory_path; .key_path; list_labs(state_root=None)
"""

from provisioner.lab.lab import DEFAULT_NAME, DEFAULT_NODES, Lab, LabHost, list_labs

__all__ = ["DEFAULT_NAME", "DEFAULT_NODES", "Lab", "LabHost", "list_labs"]
