"""The Vagrant provider: lab hosts as Debian VMs on libvirt/QEMU, driven through python-vagrant.

Place: the second implementation of the lab protocol (base.py) beside the nspawn Lab. `up`
builds and registers the project's own box (box.py), makes libvirt answer (libvirt.py), gives
the lab a storage pool of its own, runs `vagrant up` on the repo's Vagrantfile with the lab's
settings in LAB_* variables and a `.vagrant` directory inside the lab's state
(VAGRANT_DOTFILE_PATH), so several labs share one Vagrantfile. It then reads `vagrant
ssh-config` (user and each machine's key) and writes the same inventory shape as the nspawn lab,
with each VM's address on the lab's private network (10.213.<subnet>.11, .12, ...: the same
subnet space as nspawn labs, so they never collide). `down` destroys the VMs and everything the
lab made in libvirt, and stops the libvirt daemons the lab started.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionerError
from provisioner.lab import box, hostkeys, inventory, libvirt, network
from provisioner.lab.base import (
    LabHost,
    Progress,
    all_states,
    default_state_root,
    global_lock,
    repo_inventory_path,
    ssh_banner,
    validate_name,
)

NAME = "vagrant"
DEFAULT_NODES = 3
MAX_NODES = 20  # emulated VMs: beyond this a laptop is the wrong place anyway
MEMORY_MIB = int(os.environ.get("PROVISIONER_LAB_VM_MEMORY", "1024"))
CPUS = int(os.environ.get("PROVISIONER_LAB_VM_CPUS", "1"))
# Emulated VMs on a busy 2-core machine have needed ten minutes to reach SSH.
SSH_TIMEOUT = float(os.environ.get("PROVISIONER_LAB_BOOT_TIMEOUT", "600"))
MGMT_PREFIX = "10.212"  # the management network's DHCP range: 10.212.<subnet>.0/24
# Pools live where libvirt keeps images: QEMU runs as libvirt-qemu and cannot enter root's home.
POOL_ROOT = Path("/var/lib/libvirt/images")


def find_vagrant_root(cwd: Path | None = None) -> Path:
    here = (cwd or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "Vagrantfile").is_file():
            return directory
    raise ProvisionerError(f"no Vagrantfile in {here} or any parent directory; run `lab up "
                           "--provider vagrant` inside the provisioner repository")


def parse_ssh_configs(text: str) -> dict[str, dict[str, str]]:
    """`vagrant ssh-config` output: options by Host (the first value of a repeated option)."""
    hosts: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        value = value.strip().strip('"')
        if key == "Host":
            current = hosts.setdefault(value, {})
        elif current is not None:
            current.setdefault(key, value)
    return hosts


def domain_name(host: str) -> str:
    """The libvirt domain of a lab host (the Vagrantfile's default_prefix + machine name)."""
    return f"provisioner-{host}"


class VagrantLab:
    """One lab of Vagrant VMs on libvirt."""

    provider = "vagrant"
    default_name = NAME

    def __init__(self, name: str = NAME, state_root: Path | None = None,
                 progress: Progress | None = None, root: Path | None = None):
        validate_name(name)
        self.name = name
        self.state_root = Path(state_root) if state_root else default_state_root()
        self.dir = self.state_root / "labs" / name
        self.progress: Progress = progress or (lambda _msg: None)
        self.changes: list[str] = []
        self._root = Path(root) if root else None

    # -- paths and state -------------------------------------------------------------------

    @property
    def inventory_path(self) -> Path:
        return self.dir / "inventory.yaml"

    @property
    def pool(self) -> str:
        return f"provisioner-{self.name}"

    def networks(self) -> tuple[str, str]:
        return f"{self.name}-mgmt", f"{self.name}-private"

    def console_log(self, host: str) -> Path:
        return self.dir / f"{host}.console.log"

    def load(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.dir / "lab.json").read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ProvisionerError(f"reading lab state {self.dir / 'lab.json'} failed: {exc}")

    def _save(self, state: dict[str, Any]) -> None:
        tmp = self.dir / "lab.json.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self.dir / "lab.json")

    def host_names(self, state: dict[str, Any] | None = None) -> list[str]:
        state = state if state is not None else self.load()
        return [f"{self.name}-{n}" for n in range(1, (state or {}).get("nodes", 0) + 1)]

    def hosts(self) -> list[LabHost]:
        state = self.load()
        if not state or "ssh" not in state:
            return []
        roles = inventory.roles_for(state["nodes"])
        return [LabHost(name, network.host_address(state["subnet_index"], number), tuple(role),
                        user=state["ssh"][name]["user"], key=Path(state["ssh"][name]["key"]))
                for number, (name, role) in enumerate(zip(self.host_names(state), roles), 1)
                if name in state["ssh"]]

    def node_count(self) -> int:
        state = self.load()
        return state["nodes"] if state else 0

    def subnet(self) -> str:
        state = self.load()
        return network.subnet(state["subnet_index"]) if state else "-"

    def status(self) -> str:
        names = self.host_names()
        if not names:
            return "absent"
        if shutil.which("virsh") is None:
            return "unknown"
        running = sum(libvirt.domain_state(domain_name(n)) == "running" for n in names)
        if running == len(names):
            return "running"
        return "stopped" if running == 0 else "partial"

    # -- up --------------------------------------------------------------------------------

    def up(self, nodes: int = DEFAULT_NODES, mirror: str | None = None) -> list[LabHost]:
        """Bring up at least `nodes` VMs answering SSH; write the inventory; return the hosts."""
        if not 1 <= nodes <= MAX_NODES:
            raise ProvisionerError(f"the Vagrant lab holds 1 to {MAX_NODES} hosts, not {nodes}")
        if os.geteuid() != 0:
            raise ProvisionerError("the Vagrant lab needs root (libvirt's system instance)")
        libvirt.check_installed()
        self.changes = []
        with self._locked():
            state = self._ensure_state(self.load(), nodes)
            started = libvirt.ensure_daemons()
            if started:
                state["daemons"] = sorted(set(state.get("daemons", [])) | set(started))
                self._save(state)
                self._changed(f"started {', '.join(started)}")
            if libvirt.fix_kvm_permissions():
                self._changed(f"{libvirt.KVM_DEVICE} set to group kvm, mode 0660")
            state["box"] = box.ensure_box(self.progress, mirror)
            libvirt.ensure_pool(self.pool, POOL_ROOT / self.pool)
            for name in self.host_names(state):
                hostkeys.ensure(self.state_root, self.name, name)
            names = self.host_names(state)
            if any(libvirt.domain_state(domain_name(n)) != "running" for n in names):
                self._vagrant_up(state)
                self._changed(f"vagrant up: {', '.join(names)}")
            state["ssh"] = self._ssh_settings(state)
            self._save(state)
            hosts = self.hosts()
            self._wait_for_ssh(hosts)
            # The repo copy goes beside the Vagrantfile's inventories/vagrant/cluster.yaml.
            repo_copy = repo_inventory_path(self.name, NAME, cwd=Path(state["root"]))
            for path in (self.inventory_path, repo_copy):
                if path and inventory.write(path, hosts, hosts[0].key, user=hosts[0].user,
                                            host_ssh=_overrides(hosts)):
                    self._changed(f"wrote {path}")
        return hosts

    def _changed(self, what: str) -> None:
        self.changes.append(what)
        self.progress(what)

    def _ensure_state(self, state: dict[str, Any] | None, nodes: int) -> dict[str, Any]:
        if state is None:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            acceleration = libvirt.probe_acceleration()
            with global_lock():
                index = network.pick_subnet_index(
                    [s["subnet_index"] for s in all_states(self.state_root)],
                    network.addresses_on_machine(),
                    preferred=hostkeys.last_subnet(self.state_root, self.name))
                hostkeys.remember_subnet(self.state_root, self.name, index)
                state = {"name": self.name, "provider": self.provider, "subnet_index": index,
                         "nodes": nodes, "root": str(self._root or find_vagrant_root()),
                         "driver": acceleration.driver, "cpu_mode": acceleration.cpu_mode,
                         "cpu_model": acceleration.cpu_model, "memory": MEMORY_MIB,
                         "cpus": CPUS}
                self._save(state)
            self._changed(f"new Vagrant lab {self.name} on {network.subnet(index)}, "
                          f"{acceleration.describe()}")
            return state
        if state.get("provider") != self.provider:
            raise ProvisionerError(f"lab {self.name} is a {state.get('provider')} lab")
        if nodes > state["nodes"]:
            self._changed(f"growing lab {self.name} from {state['nodes']} to {nodes} hosts")
            state["nodes"] = nodes
            self._save(state)
        return state

    def environment(self, state: dict[str, Any]) -> dict[str, str]:
        """What the Vagrantfile reads: every setting of this lab."""
        index = state["subnet_index"]
        return {
            **os.environ,
            "VAGRANT_DOTFILE_PATH": str(self.dir / "vagrant"),
            "VAGRANT_DEFAULT_PROVIDER": "libvirt",
            "LAB_NAME": self.name,
            "LAB_NODES": str(state["nodes"]),
            "LAB_BOX": state.get("box", box.BOX_NAME),
            "LAB_DRIVER": state["driver"],
            "LAB_CPU_MODE": state["cpu_mode"],
            "LAB_CPU_MODEL": state["cpu_model"],
            "LAB_MEMORY": str(state["memory"]),
            "LAB_CPUS": str(state["cpus"]),
            "LAB_POOL": self.pool,
            "LAB_PRIVATE_PREFIX": network.gateway(index).rsplit(".", 1)[0],
            "LAB_MGMT_NETWORK": f"{MGMT_PREFIX}.{index}.0/24",
            "LAB_HOSTKEYS": str(hostkeys.store(self.state_root, self.name)),
            "LAB_CONSOLE_DIR": str(self.dir),
            "LAB_BOOT_TIMEOUT": str(int(SSH_TIMEOUT)),
        }

    def _client(self, state: dict[str, Any]) -> Any:
        import vagrant  # python-vagrant; imported late: it warns at import without the binary

        # Output goes to the terminal: `vagrant up` takes minutes and shows its own progress.
        return vagrant.Vagrant(root=state["root"], quiet_stdout=False, quiet_stderr=False,
                               env=self.environment(state))

    def _vagrant_up(self, state: dict[str, Any]) -> None:
        self.progress(f"vagrant up {self.name} ({state['nodes']} VMs, {state['memory']} MiB, "
                      f"libvirt driver {state['driver']})")
        try:
            self._client(state).up(provider="libvirt")
        except subprocess.CalledProcessError as exc:
            logs = ", ".join(str(self.console_log(n)) for n in self.host_names(state))
            raise ProvisionerError(f"vagrant up failed (exit {exc.returncode}); the VMs' "
                                   f"consoles: {logs}", command=_command_text(exc.cmd))

    def _ssh_settings(self, state: dict[str, Any]) -> dict[str, dict[str, str]]:
        import vagrant

        client = vagrant.Vagrant(root=state["root"], env=self.environment(state))
        try:
            configs = parse_ssh_configs(client.ssh_config())
        except subprocess.CalledProcessError as exc:
            raise ProvisionerError(f"vagrant ssh-config failed (exit {exc.returncode})",
                                   command=_command_text(exc.cmd))
        settings = {}
        for name in self.host_names(state):
            options = configs.get(name, {})
            missing = [k for k in ("User", "IdentityFile") if k not in options]
            if missing:
                raise ProvisionerError(f"vagrant ssh-config {name} lacks {', '.join(missing)}")
            key = Path(options["IdentityFile"]).expanduser()
            settings[name] = {"user": options["User"],
                              "key": str(key if key.is_absolute() else Path(state["root"]) / key)}
        return settings

    def _wait_for_ssh(self, hosts: list[LabHost]) -> None:
        deadline = time.monotonic() + SSH_TIMEOUT
        waiting = list(hosts)
        while waiting:
            waiting = [h for h in waiting if not ssh_banner(h.address)]
            if waiting and time.monotonic() > deadline:
                host = waiting[0]
                raise ProvisionerError(
                    f"lab VM {host.name} did not answer SSH on {host.address} within "
                    f"{SSH_TIMEOUT:.0f}s; see its console log {self.console_log(host.name)}")
            if waiting:
                time.sleep(1)

    # -- down ------------------------------------------------------------------------------

    def down(self) -> bool:
        """Destroy the VMs and everything the lab made; False when there was no such lab."""
        self.changes = []
        with self._locked():
            state = self.load()
            if state is None and not self.dir.exists():
                return False
            if state is not None and shutil.which("vagrant"):
                try:
                    self._client(state).destroy()
                except subprocess.CalledProcessError as exc:
                    raise ProvisionerError(f"vagrant destroy failed (exit {exc.returncode})",
                                           command=_command_text(exc.cmd))
                self._changed(f"destroyed {', '.join(self.host_names(state))}")
            if shutil.which("virsh") and (state is None or libvirt.answering()):
                for leftover in self.networks():
                    if libvirt.remove_network(leftover):
                        self._changed(f"removed libvirt network {leftover}")
                if libvirt.remove_pool(self.pool, POOL_ROOT / self.pool):
                    self._changed(f"removed storage pool {self.pool}")
            if state is not None:
                stopped = libvirt.stop_daemons(state.get("daemons", []))
                if stopped:
                    self._changed(f"stopped {', '.join(stopped)}")
            shutil.rmtree(self.dir)
            self._changed(f"removed {self.dir}")
        return True

    @contextmanager
    def _locked(self) -> Iterator[None]:
        (self.state_root / "labs").mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.state_root / "labs" / f".{self.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def _overrides(hosts: list[LabHost]) -> dict[str, dict[str, Any]]:
    """Per-host ssh settings where they differ from the first host's (Vagrant: each key)."""
    first = hosts[0]
    overrides: dict[str, dict[str, Any]] = {}
    for host in hosts:
        differs: dict[str, Any] = {}
        if host.user != first.user:
            differs["user"] = host.user
        if host.key != first.key:
            differs["key"] = str(host.key)
        overrides[host.name] = differs
    return overrides


def _command_text(cmd: Any) -> str:
    return " ".join(map(str, cmd)) if isinstance(cmd, (list, tuple)) else str(cmd)
