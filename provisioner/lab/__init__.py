"""Local lab hosts for trying and testing the provisioner without real machines.

Two providers implement one small protocol (base.LabProvider: up, down, hosts, status, list) and
write the same inventory shape: `nspawn` (default) boots Debian hosts as systemd-nspawn machines
on a private bridge on this machine; `vagrant` boots Debian VMs on libvirt/QEMU from a box this
project builds. Modules: base (the protocol, LabHost, shared helpers), providers (the table of
providers, open_lab, list_labs), sources (the Debian mirror), rootfs (cached Debian root),
hostkeys (SSH identities kept across rebuilds), network (bridge and addresses), machine (one
nspawn host), lab (the nspawn provider), box (the Vagrant box), libvirt (daemons, acceleration,
pools), vagrant (the Vagrant provider), inventory (the file both write), cli (`provisioner lab`).

Python API (used by the e2e fixtures):
    open_lab(name, provider=None, state_root=None).up(nodes=3) -> list[LabHost]; .down();
    .status(); .hosts(); .inventory_path; list_labs(state_root=None);
    Lab(name, state_root=None) for the nspawn lab directly (.key_path: root's SSH key)
"""

from provisioner.lab.base import LabHost, LabProvider
from provisioner.lab.lab import DEFAULT_NAME, DEFAULT_NODES, Lab
from provisioner.lab.providers import PROVIDERS, list_labs, open_lab

__all__ = ["DEFAULT_NAME", "DEFAULT_NODES", "PROVIDERS", "Lab", "LabHost", "LabProvider",
           "list_labs", "open_lab"]
