"""One local lab host: its overlay root, its cgroups and its detached systemd-nspawn process.

Place: lab.py decides which hosts exist and calls `start()`/`stop()` here; this module knows how a
host is laid out on disk and how nspawn is run, nothing about inventories or other hosts.

Layout of a host under the lab's state dir (`<lab>/hosts/<host>/`):
  upper/ work/   the overlay's writable layers (the cached Debian root is the read-only lower)
  root/          the merged overlay nspawn boots from
  data/          bind-mounted at /var/lib/provisioner in the host: a plain (non-overlay) directory,
                 because overlayfs cannot use an overlay as its upper layer and the container
                 runtime on the host keeps its own overlay layers there
  nspawn.pid     the nspawn process (session leader, detached from `lab up`)
and its console/nspawn log is `<lab>/<host>.log`.

There is no systemd on the operator machine here (and there may be no machined), so nspawn runs
with `--register=no --keep-unit` and this module does the bookkeeping a scope unit would do: it
puts each nspawn into its own cgroup in every hierarchy (`provisioner-lab/<lab>/<host>`), which
also gives a reliable way to find and kill every process of a host on `lab down`. The v1
controllers nspawn mounts read-only inside are remounted writable at boot; they show the host's
own subtree (nspawn's cgroup namespace roots them there), so a container runtime inside can
create cgroups and set limits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import ProvisionerError
from provisioner.lab import hostkeys

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "provisioner-lab"


@dataclass(frozen=True)
class Machine:
    lab: str
    name: str
    address: str
    gateway: str
    bridge: str
    host_dir: Path
    rootfs: Path
    log_path: Path

    @property
    def upper(self) -> Path:
        return self.host_dir / "upper"

    @property
    def work(self) -> Path:
        return self.host_dir / "work"

    @property
    def root(self) -> Path:
        return self.host_dir / "root"

    @property
    def data(self) -> Path:
        return self.host_dir / "data"

    @property
    def pid_file(self) -> Path:
        return self.host_dir / "nspawn.pid"

    @property
    def cgroup_path(self) -> str:
        return f"{CGROUP_PARENT}/{self.lab}/{self.name}"

    # -- state -----------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The nspawn pid if it is running and really is this host's nspawn."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if b"systemd-nspawn" not in Path(cmdline[0].decode()).name.encode():
            return None
        if f"--machine={self.name}".encode() not in cmdline:
            return None
        if _proc_state(pid) == "Z":
            return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def is_mounted(self) -> bool:
        return str(self.root) in mounts_under(self.host_dir)

    # -- lifecycle -------------------------------------------------------------------------

    def prepare(self, authorized_key: str, host_keys: Path | None = None) -> None:
        """Write the host's own files into its upper layer (before the overlay is mounted):
        hostname, machine id, address, root's authorized key and the host's SSH host keys
        (kept by the lab across rebuilds; without them sshd generates new ones at boot)."""
        for directory in (self.upper, self.work, self.root, self.data):
            directory.mkdir(parents=True, exist_ok=True)
        etc = self.upper / "etc"
        _write(etc / "hostname", f"{self.name}\n")
        machine_id = etc / "machine-id"
        if not machine_id.exists() or not machine_id.read_text().strip():
            _write(machine_id, uuid.uuid4().hex + "\n")
        _write(
            etc / "hosts",
            f"127.0.0.1\tlocalhost\n{self.address}\t{self.name}\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n",
        )
        # host0 is the container side of the veth nspawn plugs into the lab bridge.
        _write(
            etc / "systemd/network/10-lab-host0.network",
            "[Match]\nName=host0\n\n[Network]\n"
            f"Address={self.address}/24\nGateway={self.gateway}\n"
            "LinkLocalAddressing=no\nIPv6AcceptRA=no\n",
        )
        ssh_dir = self.upper / "root/.ssh"
        ssh_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(ssh_dir, 0o700)
        os.chmod(self.upper / "root", 0o700)
        _write(ssh_dir / "authorized_keys", authorized_key.strip() + "\n", mode=0o600)
        if host_keys is not None:
            hostkeys.install(host_keys, etc / "ssh")

    def mount(self) -> None:
        if self.is_mounted():
            return
        options = f"lowerdir={self.rootfs},upperdir={self.upper},workdir={self.work}"
        _run(["mount", "-t", "overlay", "overlay", "-o", options, str(self.root)],
             f"mounting the overlay root of {self.name}")

    def unmount(self) -> None:
        for target in sorted(mounts_under(self.host_dir), key=len, reverse=True):
            result = subprocess.run(["umount", target], capture_output=True, text=True)
            if result.returncode != 0:
                # Busy only if a process still holds it; stop() killed them, so detach it.
                _run(["umount", "-l", target], f"unmounting {target}")

    def start(self) -> int:
        """Mount the root and boot the host detached; return the nspawn pid."""
        self.mount()
        cgroups = self._create_cgroups()
        command = self.nspawn_command()
        log = open(self.log_path, "ab")
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # A session of its own so the host outlives `lab up` and its terminal; the
                # cgroup move happens before exec so nspawn and all its children are inside.
                preexec_fn=lambda: _enter_cgroups(cgroups),
                start_new_session=True,
                close_fds=True,
            )
        finally:
            log.close()
        self.pid_file.write_text(f"{process.pid}\n")
        return process.pid

    def nspawn_command(self) -> list[str]:
        command = [
            "systemd-nspawn",
            "--quiet",
            "--boot",
            f"--machine={self.name}",
            f"--hostname={self.name}",
            f"--directory={self.root}",
            # No systemd/machined on the operator machine: do not try to register a scope.
            "--register=no",
            "--keep-unit",
            f"--network-bridge={self.bridge}",
            "--console=read-only",
            # A container runtime on the host needs the full set (mounts, netns, iptables...).
            "--capability=all",
            f"--bind={self.data}:/var/lib/provisioner",
        ]
        # nspawn itself creates /dev/net/tun and /dev/fuse in the container; the devices cgroup
        # (our own subtree, inheriting allow-all) lets them be opened. Writable cgroup
        # controllers come from a unit in the cached root (see rootfs.py): binds here would be
        # hidden under the read-only cgroup mounts nspawn makes after them.
        return command

    def stop(self, grace: float = 20.0) -> None:
        """Power the host off (nspawn turns SIGTERM into a clean halt), then kill what is left."""
        request_stop(self)
        wait_stopped([self], grace)
        self.kill_remaining()

    def kill_remaining(self) -> None:
        """SIGKILL every process left in the host's cgroups, then remove the cgroups."""
        kill_cgroup_tree(self.cgroup_path, extra=self.pid())
        self.pid_file.unlink(missing_ok=True)
        remove_cgroups(self.cgroup_path)

    def _create_cgroups(self) -> dict[str, Path]:
        created: dict[str, Path] = {}
        for name, base in hierarchies().items():
            path = base
            for part in self.cgroup_path.split("/"):
                parent, path = path, path / part
                if not path.is_dir():
                    path.mkdir()
                if name.startswith("cpuset") or name == "cpuset":
                    _inherit_cpuset(parent, path)
            created[name] = path
        return created


def request_stop(machine: Machine) -> None:
    pid = machine.pid()
    if pid is not None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def wait_stopped(machines: list[Machine], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(m.is_running() for m in machines):
        time.sleep(0.2)


def hierarchies() -> dict[str, Path]:
    """Mounted cgroup hierarchies by directory name (v1 controllers, name=systemd, unified)."""
    found: dict[str, Path] = {}
    mounted = {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
               if " - cgroup" in line}
    for entry in sorted(CGROUP_ROOT.iterdir()) if CGROUP_ROOT.is_dir() else []:
        if entry.is_symlink() or not entry.is_dir():
            continue  # e.g. cpu -> cpu,cpuacct: the real directory is listed on its own
        if str(entry) in mounted:
            found[entry.name] = entry
    if not found and str(CGROUP_ROOT) in mounted:
        found["unified"] = CGROUP_ROOT  # a pure cgroup v2 machine
    return found


def cgroup_tree_pids(relative: str) -> set[int]:
    pids: set[int] = set()
    for base in hierarchies().values():
        top = base / relative
        if not top.is_dir():
            continue
        for procs in top.rglob("cgroup.procs"):
            try:
                pids.update(int(p) for p in procs.read_text().split())
            except OSError:
                continue  # the cgroup went away meanwhile
    return pids


def kill_cgroup_tree(relative: str, extra: int | None = None) -> None:
    """Kill every process in a cgroup subtree (in any hierarchy) until none is left."""
    for _ in range(50):
        pids = cgroup_tree_pids(relative) | ({extra} if extra and _proc_state(extra) not in
                                              ("Z", "X") else set())
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    raise ProvisionerError(f"processes in cgroup {relative} do not die: {sorted(pids)}")


def remove_cgroups(relative: str) -> None:
    """Remove a cgroup subtree in every hierarchy, deepest first (rmdir only works when empty)."""
    for base in hierarchies().values():
        top = base / relative
        if not top.is_dir():
            continue
        for directory in sorted((p for p in top.rglob("*") if p.is_dir()),
                                key=lambda p: len(p.parts), reverse=True):
            _rmdir_quiet(directory)
        _rmdir_quiet(top)
        # Drop the lab's and provisioner-lab's directories too once they hold nothing else.
        for parent in (top.parent, top.parent.parent):
            if parent != base:
                _rmdir_quiet(parent)


def mounts_under(directory: Path) -> list[str]:
    prefix = str(directory).rstrip("/") + "/"
    result = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        target = line.split()[4].replace("\\040", " ")
        if target.startswith(prefix) or target == str(directory):
            result.append(target)
    return result


def _enter_cgroups(cgroups: dict[str, Path]) -> None:
    for path in cgroups.values():
        with open(path / "cgroup.procs", "w") as procs:
            procs.write("0")  # 0 = the writing process itself


def _inherit_cpuset(parent: Path, child: Path) -> None:
    # A v1 cpuset cgroup accepts no task until cpus and mems are set.
    for knob in ("cpuset.cpus", "cpuset.mems"):
        if (child / knob).exists() and not (child / knob).read_text().strip():
            (child / knob).write_text((parent / knob).read_text())


def _rmdir_quiet(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def _proc_state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "X"
    return stat.rsplit(")", 1)[1].split()[0]


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


def _run(command: list[str], intent: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ProvisionerError(f"{intent} failed", command=" ".join(command),
                               output=result.stdout + result.stderr)
