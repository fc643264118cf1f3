"""Measures provisioning: `lab up`, a first `create cluster` on 3 hosts (1 control plane with etcd,
2 workers with etcd), per phase, a no-change re-run (per phase too), `verify`, each host's memory
(the RSS of everything running on it) once the cluster is up and its peak during the create
(PeakMemory), and growing the lab by a fourth
host that the next create joins.

Writes benchmarks/results/provision.json. Uses its own lab name and state directory, and
tears both down at the end. The operator's caches (dependency wheels, the virtualenv's
dependency layer) persist between runs in $PROVISIONER_BENCH_CACHE (default
~/.cache/provisioner-bench), as the lab's Debian root does: the first run fills them.
Run with `make bench` (or `.venv/bin/python benchmarks/bench_provision.py`).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Overridable so two runs on one machine do not share lab host names.
LAB = os.environ.get("PROVISIONER_BENCH_LAB", "speedlab")


PHASE_DONE = re.compile(r"^\[([a-z/-]+)\] done in ([0-9.]+)s", re.MULTILINE)


def timed(args: list[str], env: dict[str, str], phases: dict | None = None) -> float:
    started = time.monotonic()
    result = subprocess.run([str(BIN / "provisioner"), *args], env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    if phases is not None:
        phases.update({name: float(seconds) for name, seconds in PHASE_DONE.findall(result.stdout)})
    return elapsed


def host_rss_mib(inventory: Path) -> dict[str, float]:
    """The summed RSS of every process on each lab host (each host is its own PID namespace)."""
    doc = yaml.safe_load(inventory.read_text())
    found = {}
    for host in doc["hosts"]:
        result = subprocess.run(
            ["ssh", "-i", doc["ssh"]["key"], "-o", "StrictHostKeyChecking=no", "-o",
             "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", f"root@{host['address']}",
             "ps -eo rss= | awk '{s+=$1} END {print s}'"], capture_output=True, text=True)
        if result.returncode == 0 and result.stdout.strip():
            found[f"{host['name']} ({', '.join(host['roles'])})"] = round(
                int(result.stdout.strip()) / 1024, 1)
    return found


CACHE = Path(os.environ.get("PROVISIONER_BENCH_CACHE", "~/.cache/provisioner-bench")).expanduser()
MEMORY_CGROUPS = Path("/sys/fs/cgroup/memory/provisioner-lab")


class PeakMemory:
    """Each lab host's peak memory while a command runs: its cgroup's anonymous memory
    (cgroup v1 memory.stat total_rss: the processes' own pages, not the page cache the install
    fills), read every quarter second from this side, so the hosts run nothing extra."""

    def __init__(self, lab: str):
        self.directory = MEMORY_CGROUPS / lab
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            for stat in self.directory.glob("*/memory.stat"):
                for line in stat.read_text().splitlines():
                    if line.startswith("total_rss "):
                        host = stat.parent.name
                        self.peak[host] = max(self.peak.get(host, 0), int(line.split()[1]))

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def mib(self, inventory: Path) -> dict[str, float]:
        doc = yaml.safe_load(inventory.read_text())
        return {f"{h['name']} ({', '.join(h['roles'])})": round(self.peak[h["name"]] / 2**20, 1)
                for h in doc["hosts"] if h["name"] in self.peak}


def main() -> None:
    phases: dict[str, float] = {}
    no_change_phases: dict[str, float] = {}
    join_phases: dict[str, float] = {}
    memory: dict[str, float] = {}
    peak_memory: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-provision-") as scratch:
        env = dict(os.environ, PROVISIONER_STATE_DIR=scratch)
        CACHE.mkdir(parents=True, exist_ok=True)
        (Path(scratch) / "cache").symlink_to(CACHE)
        figures: dict[str, float] = {}
        try:
            figures["lab_up_seconds"] = timed(["lab", "up", "--name", LAB, "--nodes", "3"], env)
            inventory = Path(scratch) / "labs" / LAB / "inventory.yaml"
            spec = Path(scratch) / "cluster.yaml"
            spec.write_text(yaml.safe_dump({
                "apiVersion": "provisioner.dev/v1alpha1",
                "kind": "Cluster",
                "metadata": {"name": "bench"},
                "spec": {"inventory": str(inventory)},
            }))
            with PeakMemory(LAB) as peak:
                figures["create_cluster_seconds"] = timed(["create", "cluster", "-f", str(spec)],
                                                          env, phases)
            peak_memory = peak.mib(inventory)
            memory = host_rss_mib(inventory)
            figures["second_create_no_change_seconds"] = timed(
                ["create", "cluster", "-f", str(spec)], env, no_change_phases)
            figures["verify_seconds"] = timed(["verify", "-f", str(spec)], env)
            figures["lab_grow_to_4_seconds"] = timed(["lab", "up", "--name", LAB, "--nodes", "4"],
                                                     env)
            figures["create_joining_a_fourth_host_seconds"] = timed(
                ["create", "cluster", "-f", str(spec)], env, join_phases)
        finally:
            subprocess.run([str(BIN / "provisioner"), "lab", "down", "--name", LAB], env=env,
                           capture_output=True)
    record = {
        "benchmark": "provision",
        "hosts": 3,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "figures": {k: round(v, 2) for k, v in figures.items()},
        "create_phases_seconds": phases,
        "no_change_phases_seconds": no_change_phases,
        "join_fourth_host_phases_seconds": join_phases,
        "host_rss_mib_after_create": memory,
        "host_peak_memory_mib_during_create": peak_memory,
    }
    out = ROOT / "benchmarks" / "results" / "provision.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
