"""Measures the container runtime against Debian's runc on the same busybox root filesystem.

- start latency: from the API call (client create + start) until the container's process runs,
  and until /bin/true has exited (create + start + wait), median and p99 over RUNS runs taken in
  turn with runc's (one of each per round: a shared machine's load weighs on both alike); the
  same for `runc run -d` and `runc run` with a generated OCI bundle whose read-only root is the
  busybox image's unpacked layer directory; and the ratio of the two. Both without networking
  (runc's config has a new, empty network namespace; ours uses --network none) so that only the
  start paths are compared.
- CONCURRENT containers started at once: wall time until all run, ours and runc's (`runc run
  -d`, one bundle each) without networking, the median of CONCURRENT_ROUNDS rounds in turn; and
  ours on the bridge network once.
- memory: what the runtime keeps per running container (its monitor process; PSS and RSS from
  /proc/<pid>/smaps_rollup) at 1, 10 and CONCURRENT running containers, plus the one monitor
  server (the zygote the monitors are forked from) and the daemon. PSS divides shared pages
  among the processes sharing them, so the monitors' and the server's PSS add up to what they
  cost the node; "marginal" is that sum less the server's PSS with no container, per container.

Starts its own daemon on a temporary root and socket with its own bridge and subnet, and removes
all of it at the end. Writes benchmarks/results/runtime.json and prints a summary. Run as root:
`.venv/bin/python benchmarks/bench_runtime.py`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provisioner.components.runtime.client import RuntimeClient  # noqa: E402 - after sys.path
from provisioner.components.runtime.images import ImageStore  # noqa: E402
from provisioner.components.runtime.net import Network  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNTIME_RUNS", "100"))     # fewer for a quick try
WARMUP = 3
CONCURRENT = 50
CONCURRENT_ROUNDS = 3       # median of these, ours and runc's in turn
BRIDGE = "prtb0"
SUBNET = "10.197.0.0/24"
CGROUP_PARENT = "provisioner-runtime-bench"
RUNC_CGROUP_PARENT = "provisioner-runtime-bench-runc"
RUNC = "/usr/sbin/runc"
RESULTS = ROOT / "benchmarks" / "results" / "runtime.json"
DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    nearest_rank_p99 = ordered[math.ceil(0.99 * len(ordered)) - 1]
    return {"median_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(nearest_rank_p99 * 1000, 2), "runs": len(ordered)}


def memory_kib(pid: int) -> dict:
    """Rss, Pss and Private (clean + dirty) of a process, from smaps_rollup."""
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                values[key] = int(rest.split()[0])
    return {"rss": values["Rss"], "pss": values["Pss"],
            "private": values["Private_Clean"] + values["Private_Dirty"]}


def children_of(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as children:
            found += [int(child) for child in children.read().split()]
    return found


class Daemon:
    def __init__(self, scratch: str):
        self.root = os.path.join(scratch, "root")
        self.socket = os.path.join(scratch, "runtime.sock")
        self.log_path = os.path.join(scratch, "daemon.log")
        self.client = RuntimeClient(self.socket, timeout=300)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "provisioner.components.runtime.cli", "daemon",
                 "--root", self.root, "--socket", self.socket, "--bridge", BRIDGE,
                 "--subnet", SUBNET, "--cgroup-parent", CGROUP_PARENT],
                cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"the daemon exited:\n{Path(self.log_path).read_text()}")
            try:
                self.client.version()
                return
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.05)
        self.stop()
        sys.exit(f"the daemon did not start:\n{Path(self.log_path).read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def monitor_pids(self, container_ids: list[str]) -> list[int]:
        """The process the runtime keeps for each container (its monitor, "shim_pid")."""
        pids = []
        for container_id in container_ids:
            state_path = os.path.join(self.root, "containers", container_id, "state.json")
            with open(state_path) as state:
                pids.append(json.load(state)["shim_pid"])
        return pids

    def monitor_server_pid(self) -> int | None:
        for child in children_of(self.process.pid):
            with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                if b"monitor_server" in cmdline.read():
                    return child
        return None

    def remove_all(self) -> None:
        for container in self.client.containers(all=True):
            self.client.remove(container["Id"], force=True)


# -- this runtime -----------------------------------------------------------------------------

def ours_until_running(client: RuntimeClient) -> float:
    started = time.perf_counter()
    container = client.create("busybox", cmd=["sleep", "1000"], network="none")
    client.start(container)
    elapsed = time.perf_counter() - started
    client.remove(container, force=True)
    return elapsed


def ours_until_true_exits(client: RuntimeClient) -> float:
    started = time.perf_counter()
    container = client.create("busybox", cmd=["/bin/true"], network="none")
    client.start(container)
    result = client.wait(container)
    elapsed = time.perf_counter() - started
    if result["exit_code"] != 0:
        sys.exit(f"/bin/true exited with {result['exit_code']} in our runtime")
    client.remove(container)
    return elapsed


# -- runc ---------------------------------------------------------------------------------------

def runc_config(rootfs: str, args: list[str], container_id: str) -> dict:
    """An OCI runtime config like `runc spec`'s default, on a read-only root."""
    caps = {kind: DEFAULT_CAPS for kind in ("bounding", "effective", "permitted")}
    return {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
                    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                    "cwd": "/", "capabilities": caps, "noNewPrivileges": True},
        "root": {"path": rootfs, "readonly": True},
        "hostname": container_id[:12],
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "cgroupsPath": f"/{RUNC_CGROUP_PARENT}/{container_id}",
            "namespaces": [{"type": kind} for kind in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }


class Runc:
    def __init__(self, scratch: str, rootfs: str):
        self.state_root = os.path.join(scratch, "runc-state")
        self.bundle = os.path.join(scratch, "bundle")
        os.makedirs(self.bundle)
        self.rootfs = rootfs
        self.count = 0

    def _prepare(self, args: list[str]) -> str:
        self.count += 1
        container_id = f"bench-runc-{os.getpid()}-{self.count}"
        with open(os.path.join(self.bundle, "config.json"), "w") as config:
            json.dump(runc_config(self.rootfs, args, container_id), config)
        return container_id

    def _runc(self, *args: str) -> None:
        # Not a pipe for stderr: a detached container inherits runc's stdio, and a pipe it
        # holds open would never reach EOF.
        with tempfile.TemporaryFile() as errors:
            result = subprocess.run([RUNC, "--root", self.state_root, *args], cwd=self.bundle,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=errors, check=False)
            if result.returncode != 0:
                errors.seek(0)
                sys.exit(f"runc {' '.join(args)} failed: "
                         f"{errors.read().decode(errors='replace')}")

    def remove_all(self) -> None:
        """Containers a failed run left behind (none after a good one)."""
        listed = subprocess.run([RUNC, "--root", self.state_root, "list", "-q"],
                                capture_output=True, text=True, check=False)
        for container_id in listed.stdout.split():
            subprocess.run([RUNC, "--root", self.state_root, "delete", "--force", container_id],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

    def until_running(self) -> float:
        container_id = self._prepare(["sleep", "1000"])
        started = time.perf_counter()
        self._runc("run", "--detach", container_id)
        elapsed = time.perf_counter() - started
        self._runc("delete", "--force", container_id)
        return elapsed

    def until_true_exits(self) -> float:
        container_id = self._prepare(["/bin/true"])
        started = time.perf_counter()
        self._runc("run", container_id)      # foreground: returns at exit, then deletes
        return time.perf_counter() - started

    def start_concurrently(self) -> float:
        """CONCURRENT `runc run -d` at once, each with its own bundle; wall time until all run."""
        ids = []
        for number in range(CONCURRENT):
            self.count += 1
            container_id = f"bench-runc-{os.getpid()}-{self.count}"
            bundle = os.path.join(self.bundle, container_id)
            os.makedirs(bundle)
            with open(os.path.join(bundle, "config.json"), "w") as config:
                json.dump(runc_config(self.rootfs, ["sleep", "1000"], container_id), config)
            ids.append((container_id, bundle))
        with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
            started = time.perf_counter()
            list(pool.map(lambda item: self._runc("run", "--detach", "--bundle", item[1],
                                                  item[0]), ids))
            elapsed = time.perf_counter() - started
        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(lambda item: self._runc("delete", "--force", item[0]), ids))
        return elapsed


def remove_cgroup_parents() -> None:
    """The (now empty) parent cgroups both runtimes made, in every v1 hierarchy or in v2."""
    base = Path("/sys/fs/cgroup")
    for top in [base, *(path for path in base.iterdir() if path.is_dir())]:
        for parent in (CGROUP_PARENT, RUNC_CGROUP_PARENT):
            try:
                (top / parent).rmdir()
            except OSError:
                pass


# -- the run --------------------------------------------------------------------------------------

def measure_interleaved(functions: dict) -> dict[str, list[float]]:
    """RUNS samples of each function, taken in turn (one of each per round), so load that comes
    and goes on a shared machine weighs on every function alike."""
    for _ in range(WARMUP):
        for function in functions.values():
            function()
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(RUNS):
        for name, function in functions.items():
            samples[name].append(function())
    return samples


def start_concurrently(client: RuntimeClient, network: str) -> tuple[float, list[str]]:
    def one(number: int) -> str:
        container = client.create("busybox", cmd=["sleep", "1000"],
                                  name=f"bench-{network}-{number}", network=network)
        client.start(container)
        return container

    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        started = time.perf_counter()
        containers = list(pool.map(one, range(CONCURRENT)))
        elapsed = time.perf_counter() - started
    running = [c for c in client.containers() if c["Id"] in set(containers)]
    if len(running) != CONCURRENT:
        sys.exit(f"only {len(running)} of {CONCURRENT} containers are running")
    return elapsed, containers


def memory_with(daemon: Daemon, containers: list[str], server_idle: dict) -> dict:
    """What the runtime keeps for these running containers, per container and in all."""
    monitors = [memory_kib(pid) for pid in daemon.monitor_pids(containers)]
    server_pid = daemon.monitor_server_pid()
    server = memory_kib(server_pid) if server_pid else {"rss": 0, "pss": 0, "private": 0}
    count = len(monitors)
    total_pss = sum(m["pss"] for m in monitors) + server["pss"]
    return {
        "containers": count,
        "monitor_pss_kib_each": round(sum(m["pss"] for m in monitors) / count, 1),
        "monitor_rss_kib_each": round(sum(m["rss"] for m in monitors) / count, 1),
        "monitor_private_kib_each": round(sum(m["private"] for m in monitors) / count, 1),
        "server_pss_kib": server["pss"], "server_rss_kib": server["rss"],
        "marginal_pss_kib_per_container": round((total_pss - server_idle["pss"]) / count, 1),
        "daemon": memory_kib(daemon.process.pid),
    }


def start_sleepers(client: RuntimeClient, count: int) -> list[str]:
    containers = []
    for _ in range(count):
        container = client.create("busybox", cmd=["sleep", "1000"], network="none")
        client.start(container)
        containers.append(container)
    return containers


def remove(client: RuntimeClient, containers: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda c: client.remove(c, force=True), containers))


def run(scratch: str) -> dict:
    daemon = Daemon(scratch)
    runc = None
    try:
        client = daemon.client
        daemon_fresh = memory_kib(daemon.process.pid)
        server_pid = daemon.monitor_server_pid()
        server_idle = memory_kib(server_pid) if server_pid else {"rss": 0, "pss": 0}
        store = ImageStore(daemon.root)
        rootfs = store.layer_dirs(store.resolve("busybox"))[0]
        runc = Runc(scratch, rootfs)

        samples = measure_interleaved({
            "ours_running": lambda: ours_until_running(client),
            "runc_running": runc.until_running,
            "ours_true": lambda: ours_until_true_exits(client),
            "runc_true": runc.until_true_exits})
        daemon_idle = memory_kib(daemon.process.pid)

        memory = {}
        running = start_sleepers(client, 1)
        memory["1"] = memory_with(daemon, running, server_idle)
        running += start_sleepers(client, 9)
        memory["10"] = memory_with(daemon, running, server_idle)
        remove(client, running)

        concurrent: dict[str, list[float]] = {"ours": [], "runc": []}
        for round_number in range(CONCURRENT_ROUNDS):     # in turn, as the latency runs
            seconds, running = start_concurrently(client, "none")
            concurrent["ours"].append(seconds)
            if round_number == 0:
                memory[str(CONCURRENT)] = memory_with(daemon, running, server_idle)
            remove(client, running)
            concurrent["runc"].append(runc.start_concurrently())
        concurrent_none = statistics.median(concurrent["ours"])
        runc_concurrent = statistics.median(concurrent["runc"])
        concurrent_bridge, running = start_concurrently(client, "bridge")
        remove(client, running)
    finally:
        try:
            if runc is not None:
                runc.remove_all()
            daemon.remove_all()
        finally:
            daemon.stop()
            Network(bridge=BRIDGE, subnet=SUBNET,
                    state_dir=os.path.join(daemon.root, "network")).teardown_all()
            remove_cgroup_parents()

    def compared(ours: list[float], theirs: list[float]) -> dict:
        a, b = summary(ours), summary(theirs)
        return {"provisioner_runtime": a, "runc": b,
                "ratio_median": round(a["median_ms"] / b["median_ms"], 2),
                "ratio_p99": round(a["p99_ms"] / b["p99_ms"], 2)}

    return {
        "rootfs": "busybox:latest (bootstrap image; runc uses its unpacked layer dir, read-only)",
        "network": "none for the latency runs and the compared concurrent start",
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "until_running": compared(samples["ours_running"], samples["runc_running"]),
        "until_true_exited": compared(samples["ours_true"], samples["runc_true"]),
        "concurrent_start": {
            "containers": CONCURRENT,
            "wall_seconds_until_all_running": {
                "provisioner_runtime": round(concurrent_none, 3),
                "runc": round(runc_concurrent, 3),
                "rounds": {name: [round(x, 3) for x in values]
                           for name, values in concurrent.items()},
                "ratio": round(concurrent_none / runc_concurrent, 2),
                "provisioner_runtime_bridge_network": round(concurrent_bridge, 3)}},
        "memory_kib_by_running_containers": memory,
        "monitor_server_idle_kib": server_idle,
        "daemon_kib": {"fresh": daemon_fresh, "idle_after_runs": daemon_idle},
    }


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("run as root: containers need namespaces, cgroups and mounts")
    if not os.path.exists(RUNC):
        sys.exit(f"{RUNC} is missing: apt-get install runc")
    scratch = tempfile.mkdtemp(prefix="bench-runtime-")
    try:
        results = run(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    for what in ("until_running", "until_true_exited"):
        row = results[what]
        print(f"{what:18} ours median {row['provisioner_runtime']['median_ms']} ms "
              f"p99 {row['provisioner_runtime']['p99_ms']} ms | runc median "
              f"{row['runc']['median_ms']} ms p99 {row['runc']['p99_ms']} ms | ratio "
              f"{row['ratio_median']} (p99 {row['ratio_p99']})")
    wall = results["concurrent_start"]["wall_seconds_until_all_running"]
    print(f"{CONCURRENT} concurrent starts: ours {wall['provisioner_runtime']} s, runc "
          f"{wall['runc']} s (ratio {wall['ratio']}); ours on the bridge "
          f"{wall['provisioner_runtime_bridge_network']} s")
    for count, row in results["memory_kib_by_running_containers"].items():
        print(f"{count:>3} running: monitor PSS {row['monitor_pss_kib_each']} KiB RSS "
              f"{row['monitor_rss_kib_each']} KiB private {row['monitor_private_kib_each']} KiB "
              f"each; server PSS {row['server_pss_kib']} KiB; marginal PSS "
              f"{row['marginal_pss_kib_per_container']} KiB per container; daemon PSS "
              f"{row['daemon']['pss']} KiB")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
