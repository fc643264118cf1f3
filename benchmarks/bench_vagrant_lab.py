"""Measures the Vagrant lab: box build (cached), `lab up` of NODES VMs to SSH-ready, memory per
VM, `lab down`; and, with BENCH_VAGRANT_CREATE=1, `create cluster` on the VMs beside the same on
nspawn hosts in the same run.

Runs the real CLI in a temporary state root (labs `benchv` and `benchn`) and takes both down at
the end. The box build is timed as it happens: "first" when no box was cached, else "cached".
Memory is the resident size of each VM's QEMU process. Writes benchmarks/results/vagrant_lab.json
and prints it. Run with `.venv/bin/python benchmarks/bench_vagrant_lab.py` (root; NODES=3 by
default, BENCH_VAGRANT_NODES to change; about 5 minutes emulated without the cluster).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provisioner.lab import box, libvirt  # noqa: E402

NODES = int(os.environ.get("BENCH_VAGRANT_NODES", "3"))
CREATE = os.environ.get("BENCH_VAGRANT_CREATE") == "1"
PROVISIONER = str(Path(sys.executable).parent / "provisioner")


def _timed(env: dict[str, str], *args: str) -> float:
    started = time.monotonic()
    result = subprocess.run([PROVISIONER, *args], cwd=ROOT, env=env, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr}")
    return round(time.monotonic() - started, 1)


def _qemu_rss_mib(lab: str) -> list[int]:
    sizes = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            status = (proc / "status").read_text()
        except OSError:
            continue
        if cmdline[0].endswith(b"qemu-system-x86_64") and any(
                f"guest=provisioner-{lab}-".encode() in arg for arg in cmdline):
            rss = next(line for line in status.splitlines() if line.startswith("VmRSS"))
            sizes.append(int(rss.split()[1]) // 1024)
    return sizes


def _spec(workdir: Path, name: str, inventory: Path) -> Path:
    spec = workdir / f"{name}.yaml"
    spec.write_text(f"apiVersion: provisioner.dev/v1alpha1\nkind: Cluster\nmetadata:\n"
                    f"  name: {name}\nspec:\n  inventory: {inventory}\n")
    return spec


def main() -> None:
    results: dict[str, object] = {"nodes": NODES, "machine": platform.machine(),
                                  "cpus": os.cpu_count(),
                                  "acceleration": libvirt.probe_acceleration().describe()}
    cached = box.box_path().is_file()
    started = time.monotonic()
    box.ensure_box()
    results["box_build_s"] = {("cached" if cached else "first"): round(time.monotonic() -
                                                                         started, 1)}
    with tempfile.TemporaryDirectory(prefix="bench-vagrant-") as tmp:
        env = {**os.environ, "PROVISIONER_STATE_DIR": tmp}
        state = Path(tmp)
        try:
            results["lab_up_to_ssh_s"] = _timed(env, "lab", "up", "--provider", "vagrant",
                                                "--name", "benchv", "--nodes", str(NODES))
            results["qemu_rss_mib_per_vm"] = _qemu_rss_mib("benchv")
            results["vm_memory_mib"] = json.loads(
                (state / "labs/benchv/lab.json").read_text())["memory"]
            if CREATE:
                results["nspawn_lab_up_s"] = _timed(env, "lab", "up", "--name", "benchn",
                                                    "--nodes", str(NODES))
                for name in ("benchn", "benchv"):
                    spec = _spec(state, name, state / "labs" / name / "inventory.yaml")
                    results[f"create_cluster_{name}_s"] = _timed(env, "create", "cluster",
                                                                 "-f", str(spec))
        finally:
            results["lab_down_s"] = _timed(env, "lab", "down", "--name", "benchv")
            if CREATE:
                _timed(env, "lab", "down", "--name", "benchn")
    out = ROOT / "benchmarks" / "results" / "vagrant_lab.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
