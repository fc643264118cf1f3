"""The Vagrant provider: lab VMs from the repo's Vagrantfile, for users with a hypervisor.

Place: the alternative to the nspawn lab behind `provisioner lab up --provider vagrant`. It runs
`vagrant up` through python-vagrant in the directory holding the Vagrantfile, reads
`vagrant ssh-config` for each machine (User, IdentityFile) and writes the same inventory shape
as the nspawn lab (inventory.py), with each machine's private-network address, to the lab state dir and to
`inventories/vagrant/hosts.yaml` of the repo. Machines are `vagrant-1..N`; roles follow the
nspawn lab's layout. Its state (`labs/vagrant/lab.json`) only records the provider, the
Vagrantfile's directory and the node count, so `lab down --name vagrant` can `vagrant destroy`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionerError
from provisioner.lab import inventory
from provisioner.lab.lab import Progress, default_state_root

NAME = "vagrant"
DEFAULT_NODES = 3
MAX_NODES = 9  # the Vagrantfile's private addresses are 192.168.56.11..19


@dataclass(frozen=True)
class VagrantHost:
    name: str
    address: str
    roles: tuple[str, ...]
    port: int
    user: str
    key: Path


def find_vagrant_root(cwd: Path | None = None) -> Path:
    here = (cwd or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "Vagrantfile").is_file():
            return directory
    raise ProvisionerError(f"no Vagrantfile in {here} or any parent directory")


def parse_ssh_config(text: str) -> dict[str, str]:
    """Options of the first Host block of `vagrant ssh-config` output (keys as written)."""
    options: dict[str, str] = {}
    seen_host = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if key == "Host":
            if seen_host:
                break
            seen_host = True
            continue
        options[key] = value.strip().strip('"')
    return options


class VagrantLab:
    """Vagrant VMs as lab hosts; needs the `vagrant` binary and a provider on this machine."""

    provider = NAME
    name = NAME

    def __init__(self, root: Path | None = None, state_root: Path | None = None,
                 progress: Progress | None = None):
        self._root = Path(root) if root else None
        self.state_root = Path(state_root) if state_root else default_state_root()
        self.dir = self.state_root / "labs" / NAME
        self.progress: Progress = progress or (lambda _msg: None)

    @property
    def root(self) -> Path:
        if self._root is None:
            state = self.load()
            self._root = Path(state["root"]) if state else find_vagrant_root()
        return self._root

    @property
    def inventory_path(self) -> Path:
        return self.dir / "inventory.yaml"

    def load(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.dir / "lab.json").read_text())
        except FileNotFoundError:
            return None

    def _vagrant(self, nodes: int) -> Any:
        if shutil.which("vagrant") is None:
            raise ProvisionerError(
                "the vagrant binary is not installed (or not on PATH); install Vagrant and a "
                "provider such as VirtualBox or libvirt, or use `--provider nspawn`"
            )
        import vagrant  # python-vagrant; imported late: it warns at import without the binary

        env = {**os.environ, "LAB_NODES": str(nodes)}
        # Output goes to the terminal: `vagrant up` takes minutes and shows its own progress.
        return vagrant.Vagrant(root=str(self.root), quiet_stdout=False, quiet_stderr=False,
                               env=env)

    def up(self, nodes: int = DEFAULT_NODES) -> list[VagrantHost]:
        """`vagrant up`, then write the inventory from each machine's ssh-config."""
        if not 1 <= nodes <= MAX_NODES:
            raise ProvisionerError(f"the Vagrant lab holds 1 to {MAX_NODES} hosts, not {nodes}")
        client = self._vagrant(nodes)
        self.progress(f"vagrant up in {self.root} ({nodes} machines)")
        try:
            client.up()
        except subprocess.CalledProcessError as exc:
            raise ProvisionerError(f"vagrant up failed (exit {exc.returncode})",
                                   command=_command_text(exc.cmd))
        hosts = []
        for number, roles in enumerate(inventory.roles_for(nodes), start=1):
            name = f"{NAME}-{number}"
            try:
                options = parse_ssh_config(client.ssh_config(vm_name=name))
            except subprocess.CalledProcessError as exc:
                raise ProvisionerError(f"vagrant ssh-config {name} failed (exit "
                                       f"{exc.returncode})", command=_command_text(exc.cmd))
            missing = [k for k in ("User", "IdentityFile") if k not in options]
            if missing:
                raise ProvisionerError(f"vagrant ssh-config {name} lacks {', '.join(missing)}")
            key = Path(options["IdentityFile"]).expanduser()
            if not key.is_absolute():
                key = self.root / key
            # ssh-config's HostName/Port are a NAT port forward on 127.0.0.1, the same for every
            # machine's address; etcd peers and smoke tests need each host's own address, so
            # hosts are reached on the private network the Vagrantfile gives them.
            hosts.append(VagrantHost(name, private_address(number), tuple(roles), 22,
                                     options["User"], key))
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.dir / "lab.json").write_text(json.dumps(
            {"name": NAME, "provider": NAME, "root": str(self.root), "nodes": nodes}, indent=2
        ) + "\n")
        for path in (self.inventory_path, self.root / "inventories" / "vagrant" / "hosts.yaml"):
            if write_inventory(path, hosts):
                self.progress(f"wrote {path}")
        return hosts

    def down(self) -> bool:
        state = self.load()
        if state is None:
            return False
        client = self._vagrant(state["nodes"])
        try:
            client.destroy()
        except subprocess.CalledProcessError as exc:
            raise ProvisionerError(f"vagrant destroy failed (exit {exc.returncode})",
                                   command=_command_text(exc.cmd))
        shutil.rmtree(self.dir)
        return True

    def node_count(self) -> int:
        state = self.load()
        return state["nodes"] if state else 0

    def subnet(self) -> str:
        return "192.168.56.0/24"

    def status(self) -> str:
        state = self.load()
        if state is None:
            return "absent"
        if shutil.which("vagrant") is None:
            return "unknown"
        try:
            states = [s.state for s in self._vagrant(state["nodes"]).status()]
        except subprocess.CalledProcessError:
            return "unknown"
        running = sum(s == "running" for s in states)
        if states and running == len(states):
            return "running"
        return "stopped" if running == 0 else "partial"


def private_address(number: int) -> str:
    """The Vagrantfile's fixed private-network address of machine `vagrant-<number>`."""
    return f"192.168.56.{10 + number}"


def write_inventory(path: Path, hosts: list[VagrantHost]) -> bool:
    """The common ssh settings are the first host's; other hosts carry what differs."""
    first = hosts[0]
    overrides: dict[str, dict[str, Any]] = {}
    for host in hosts:
        differs: dict[str, Any] = {}
        if host.user != first.user:
            differs["user"] = host.user
        if host.port != first.port:
            differs["port"] = host.port
        if host.key != first.key:
            differs["key"] = str(host.key)
        overrides[host.name] = differs
    return inventory.write(path, hosts, first.key, user=first.user, port=first.port,
                           host_ssh=overrides)


def _command_text(cmd: Any) -> str:
    return " ".join(map(str, cmd)) if isinstance(cmd, (list, tuple)) else str(cmd)
