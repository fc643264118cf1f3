"""A named local lab of nspawn hosts: its state, its hosts, its inventory. Orchestrates rootfs,
network, machine.

Place: the nspawn provider of the lab protocol (base.py), opened through providers.py by
`provisioner lab up/down/list` and the e2e fixtures. State lives in
`<state root>/labs/<name>/` (`lab.json`, the SSH key pair, per-host dirs, logs, inventory.yaml);
everything that exists outside it (the bridge, overlay mounts, cgroups, nspawn processes) is
named from what lab.json records, so `down` can find and remove it all even after a crash.

`up` is idempotent: it compares what is running with what is wanted and only starts what is
missing (a new host, a crashed host); `changes` says what it did, empty when nothing changed.
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

from provisioner.errors import ProvisionerError
from provisioner.lab import hostkeys, inventory, network, rootfs
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
from provisioner.lab.machine import (
    CGROUP_PARENT,
    Machine,
    kill_cgroup_tree,
    mounts_under,
    remove_cgroups,
    request_stop,
    wait_stopped,
)

DEFAULT_NAME = "lab"
DEFAULT_NODES = 3
BOOT_TIMEOUT = float(os.environ.get("PROVISIONER_LAB_BOOT_TIMEOUT", "180"))
STOP_GRACE = 20.0

__all__ = ["DEFAULT_NAME", "DEFAULT_NODES", "Lab", "LabHost", "default_state_root",
           "repo_inventory_path"]


class Lab:
    """One local lab of systemd-nspawn hosts (provider nspawn)."""

    provider = "nspawn"
    default_name = DEFAULT_NAME

    def __init__(self, name: str = DEFAULT_NAME, state_root: Path | None = None,
                 progress: Progress | None = None):
        validate_name(name)
        self.name = name
        self.state_root = Path(state_root) if state_root else default_state_root()
        self.dir = self.state_root / "labs" / name
        self.progress: Progress = progress or (lambda _msg: None)
        self.changes: list[str] = []

    # -- paths -----------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.dir / "lab.json"

    @property
    def key_path(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def inventory_path(self) -> Path:
        return self.dir / "inventory.yaml"

    # -- state -----------------------------------------------------------------------------

    def load(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ProvisionerError(f"reading lab state {self.state_file} failed: {exc}")

    def _save(self, state: dict) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self.state_file)

    def exists(self) -> bool:
        return self.state_file.exists()

    def machines(self, state: dict | None = None) -> list[Machine]:
        state = state if state is not None else self.load()
        if not state:
            return []
        index = state["subnet_index"]
        root = Path(state["rootfs"])
        return [
            Machine(
                lab=self.name,
                name=host_name(self.name, number),
                address=network.host_address(index, number),
                gateway=network.gateway(index),
                bridge=network.bridge_name(index),
                host_dir=self.dir / "hosts" / host_name(self.name, number),
                rootfs=root,
                log_path=self.dir / f"{host_name(self.name, number)}.log",
            )
            for number in range(1, state["nodes"] + 1)
        ]

    def hosts(self) -> list[LabHost]:
        state = self.load()
        if not state:
            return []
        roles = inventory.roles_for(state["nodes"])
        return [LabHost(m.name, m.address, tuple(r), key=self.key_path)
                for m, r in zip(self.machines(state), roles)]

    def status(self) -> str:
        """running, stopped, partial, or absent (no such lab)."""
        machines = self.machines()
        if not machines:
            return "absent"
        running = sum(m.is_running() for m in machines)
        if running == len(machines):
            return "running"
        return "stopped" if running == 0 else "partial"

    def node_count(self) -> int:
        state = self.load()
        return state["nodes"] if state else 0

    def subnet(self) -> str:
        state = self.load()
        return network.subnet(state["subnet_index"]) if state else "-"

    # -- up --------------------------------------------------------------------------------

    def up(self, nodes: int = DEFAULT_NODES, mirror: str | None = None) -> list[LabHost]:
        """Make the lab run at least `nodes` hosts, each answering SSH; return all hosts.

        Each host boots with the SSH host keys it had before (hostkeys.py), so a rebuilt lab
        does not trip the host-key pins of clusters created on it."""
        if not 1 <= nodes <= network.MAX_HOSTS:
            raise ProvisionerError(f"--nodes must be between 1 and {network.MAX_HOSTS}")
        if os.geteuid() != 0:
            raise ProvisionerError("the nspawn lab needs root (mounts, bridges, cgroups)")
        if shutil.which("systemd-nspawn") is None:
            raise ProvisionerError(
                "systemd-nspawn is not installed; run `bash scripts/install-deps.sh`"
            )
        self.changes = []
        with self._locked():
            state = self.load()
            if state and nodes < state["nodes"]:
                self.progress(f"lab {self.name} has {state['nodes']} hosts; keeping them all "
                              f"(`lab down` first for a smaller lab)")
            root = rootfs.ensure_rootfs(progress=self.progress, mirror=mirror)
            state = self._ensure_state(state, nodes, root)
            index = state["subnet_index"]
            if network.ensure_bridge(index):
                self._changed(f"bridge {network.bridge_name(index)} {network.subnet(index)} up")
            public_key = self._ensure_key()
            started = []
            for machine in self.machines(state):
                if machine.is_running():
                    continue
                was_known = machine.host_dir.exists()
                self._cleanup_host(machine)
                machine.prepare(public_key, hostkeys.ensure(self.state_root, self.name,
                                                            machine.name))
                machine.start()
                started.append(machine)
                self._changed(f"{'restarted' if was_known else 'started'} {machine.name} "
                              f"({machine.address})")
            self._wait_for_ssh(self.machines(state), started)
            if inventory.write(self.inventory_path, self.hosts(), self.key_path):
                self._changed(f"wrote {self.inventory_path}")
            repo_copy = repo_inventory_path(self.name, DEFAULT_NAME)
            if repo_copy and inventory.write(repo_copy, self.hosts(), self.key_path):
                self._changed(f"wrote {repo_copy}")
        return self.hosts()

    def shrink(self, nodes: int) -> list[LabHost]:
        """Stop and forget the hosts past the first `nodes` (the inverse of growing with `up`);
        rewrite the inventory; return the hosts left. Their SSH host keys are kept, so a host
        grown again later answers with the key clusters pinned."""
        if nodes < 1:
            raise ProvisionerError("--nodes must be at least 1")
        self.changes = []
        with self._locked():
            state = self.load()
            if state is None:
                raise ProvisionerError(f"no lab named {self.name}; `lab up` first")
            extra = self.machines(state)[nodes:]
            for machine in extra:
                request_stop(machine)
            wait_stopped(extra, STOP_GRACE)
            for machine in extra:
                machine.kill_remaining()
                machine.unmount()
                shutil.rmtree(machine.host_dir, ignore_errors=True)
                machine.log_path.unlink(missing_ok=True)
                self._changed(f"removed {machine.name} ({machine.address})")
            if extra:
                state["nodes"] = nodes
                self._save(state)
                if inventory.write(self.inventory_path, self.hosts(), self.key_path):
                    self._changed(f"wrote {self.inventory_path}")
                repo_copy = repo_inventory_path(self.name, DEFAULT_NAME)
                if repo_copy and inventory.write(repo_copy, self.hosts(), self.key_path):
                    self._changed(f"wrote {repo_copy}")
        return self.hosts()

    def _changed(self, what: str) -> None:
        self.changes.append(what)
        self.progress(what)

    def _ensure_state(self, state: dict | None, nodes: int, root: Path) -> dict:
        if state is None:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            with global_lock():
                taken = [lab_state["subnet_index"] for lab_state in all_states(self.state_root)]
                # The subnet it had before, if free: same addresses, same pinned host keys.
                index = network.pick_subnet_index(
                    taken, network.addresses_on_machine(),
                    preferred=hostkeys.last_subnet(self.state_root, self.name))
                hostkeys.remember_subnet(self.state_root, self.name, index)
                state = {"name": self.name, "provider": self.provider, "subnet_index": index,
                         "nodes": nodes, "rootfs": str(root)}
                self._save(state)
            self._changed(f"new lab {self.name} on {network.subnet(index)}")
            return state
        if state.get("provider", self.provider) != self.provider:
            raise ProvisionerError(f"lab {self.name} is a {state['provider']} lab; "
                                   f"use `--provider {state['provider']}`")
        changed = False
        if nodes > state["nodes"]:
            self._changed(f"growing lab {self.name} from {state['nodes']} to {nodes} hosts")
            state["nodes"] = nodes
            changed = True
        if state["rootfs"] != str(root) and not any(m.is_running() for m in self.machines(state)):
            state["rootfs"] = str(root)  # a stopped lab picks up a rebuilt root
            changed = True
        if changed:
            self._save(state)
        return state

    def _ensure_key(self) -> str:
        public = self.key_path.with_suffix(".pub")
        if not (self.key_path.exists() and public.exists()):
            for path in (self.key_path, public):
                path.unlink(missing_ok=True)
            command = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                       f"provisioner-lab-{self.name}", "-f", str(self.key_path)]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise ProvisionerError("generating the lab SSH key failed",
                                       command=" ".join(command),
                                       output=result.stdout + result.stderr)
            self._changed(f"generated SSH key {self.key_path}")
        os.chmod(self.key_path, 0o600)
        return public.read_text()

    def _cleanup_host(self, machine: Machine) -> None:
        # Leftovers of a crashed host: stray processes in its cgroups, a stale overlay mount.
        machine.kill_remaining()
        machine.unmount()

    def _wait_for_ssh(self, machines: list[Machine], started: list[Machine]) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT
        waiting = list(machines)
        if started:
            self.progress(f"waiting for sshd on {', '.join(m.name for m in started)}")
        while waiting:
            for machine in list(waiting):
                if ssh_banner(machine.address):
                    waiting.remove(machine)
                    continue
                if not machine.is_running():
                    raise ProvisionerError(
                        f"lab host {machine.name} stopped while booting; see {machine.log_path}",
                        output=_tail(machine.log_path),
                    )
            if waiting and time.monotonic() > deadline:
                machine = waiting[0]
                raise ProvisionerError(
                    f"lab host {machine.name} ({machine.address}) did not answer SSH within "
                    f"{BOOT_TIMEOUT:.0f}s; see {machine.log_path}",
                    output=_tail(machine.log_path),
                )
            if waiting:
                time.sleep(0.5)

    # -- down ------------------------------------------------------------------------------

    def down(self) -> bool:
        """Stop and remove everything of the lab; False if there was no such lab."""
        self.changes = []
        with self._locked():
            state = self.load()
            if state is None and not self.dir.exists():
                return False
            machines = self.machines(state)
            for machine in machines:
                request_stop(machine)
            wait_stopped(machines, STOP_GRACE)
            for machine in machines:
                machine.kill_remaining()
                machine.unmount()
                self._changed(f"stopped {machine.name}")
            # Processes and mounts of hosts lab.json no longer lists (a crash mid-`up`) go too.
            kill_cgroup_tree(f"{CGROUP_PARENT}/{self.name}")
            remove_cgroups(f"{CGROUP_PARENT}/{self.name}")
            for target in sorted(mounts_under(self.dir), key=len, reverse=True):
                subprocess.run(["umount", "-l", target], capture_output=True)
            if state is not None and network.delete_bridge(state["subnet_index"]):
                self._changed(f"deleted bridge {network.bridge_name(state['subnet_index'])}")
            if mounts_under(self.dir):
                raise ProvisionerError(f"mounts remain under {self.dir}; not deleting it",
                                       output="\n".join(mounts_under(self.dir)))
            shutil.rmtree(self.dir)
            self._changed(f"removed {self.dir}")
        return True

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Beside the lab dir, not in it: `down` deletes the lab dir.
        (self.state_root / "labs").mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.state_root / "labs" / f".{self.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def host_name(lab: str, number: int) -> str:
    return f"{lab}-{number}"


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
