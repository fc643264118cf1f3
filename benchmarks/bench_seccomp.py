"""What the default seccomp filter costs at container start.

- start-to-exit of `/bin/true` through the container core (api.start + api.wait, no daemon, no
  network namespace), with the default profile ("runtime/default") and with "unconfined",
  runs interleaved so both see the same machine load: median and p99 of each and the difference.
- the filter's own parts: checking and reducing the default profile for the default capability
  set, and having libseccomp build its BPF program (both in the caller, once per distinct
  profile: the result is cached), and loading the program with seccomp(2) in the container init
  before execve (measured in forked children).

Needs root. Writes benchmarks/results/seccomp.json and prints a summary:
`.venv/bin/python benchmarks/bench_seccomp.py` (BENCH_SECCOMP_RUNS, default 60).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provisioner.components.runtime.container import api, seccomp, seccomp_profile  # noqa: E402
from provisioner.components.runtime.container.caps import DEFAULT_CAPABILITIES  # noqa: E402
from provisioner.components.runtime.container.spec import ContainerSpec, Process  # noqa: E402
from tests.runtime.core.conftest import build_busybox_rootfs  # noqa: E402

RUNS = int(os.environ.get("BENCH_SECCOMP_RUNS", "60"))
WARMUP = 3
CGROUP_PARENT = "provisioner-runtime-bench-seccomp"
RESULTS = ROOT / "benchmarks" / "results" / "seccomp.json"


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[math.ceil(0.99 * len(ordered)) - 1] * 1000, 2),
            "runs": len(ordered)}


def start_to_exit(workdir: str, layer: str, setting) -> float:
    container_id = "bs-" + uuid.uuid4().hex[:12]
    state_dir = os.path.join(workdir, container_id)
    os.makedirs(state_dir)
    spec = ContainerSpec(id=container_id, state_dir=state_dir, lower_dirs=[layer],
                         process=Process(args=["/bin/true"], env=["PATH=/bin"], seccomp=setting),
                         hostname=container_id, cgroup_parent=CGROUP_PARENT)
    began = time.perf_counter()
    api.start(spec)
    final = api.wait(state_dir, 30)
    elapsed = time.perf_counter() - began
    assert final.exit_code == 0, final
    api.delete(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
    return elapsed


def in_child(action) -> float:
    """Seconds `action` takes in a forked child (a loaded filter cannot be taken back)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        began = time.perf_counter()
        action()
        os.write(write_fd, repr(time.perf_counter() - began).encode())
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        took = float(pipe.read())
    os.waitpid(pid, 0)
    return took


def main() -> int:
    if os.geteuid() != 0:
        print("run as root (containers need namespaces and mounts)", file=sys.stderr)
        return 1
    workdir = tempfile.mkdtemp(prefix="bench-seccomp-")
    try:
        layer = os.path.join(workdir, "busybox")
        build_busybox_rootfs(layer)
        samples: dict[str, list[float]] = {"runtime/default": [], "unconfined": []}
        for index in range(WARMUP + RUNS):
            for setting in samples:
                took = start_to_exit(workdir, layer, setting)
                if index >= WARMUP:
                    samples[setting].append(took)
        compile_samples, build_samples, load_samples = [], [], []
        held = {f"CAP_{name}" for name in DEFAULT_CAPABILITIES}
        compiled = seccomp_profile.compile_setting("runtime/default", None)
        for _ in range(RUNS):
            began = time.perf_counter()
            description = seccomp_profile._compile(seccomp_profile.DEFAULT_PROFILE, held)
            compile_samples.append(time.perf_counter() - began)
            began = time.perf_counter()
            seccomp.build_bpf(description)
            build_samples.append(time.perf_counter() - began)
            load_samples.append(in_child(lambda: seccomp.load(compiled)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for base in ["/sys/fs/cgroup"] + [f"/sys/fs/cgroup/{d}" for d in os.listdir("/sys/fs/cgroup")]:
            try:
                os.rmdir(os.path.join(base, CGROUP_PARENT))
            except OSError:
                pass
    confined, unconfined = summary(samples["runtime/default"]), summary(samples["unconfined"])
    results = {
        "start_to_exit_default_profile": confined,
        "start_to_exit_unconfined": unconfined,
        "filter_cost_median_ms": round(confined["median_ms"] - unconfined["median_ms"], 2),
        "check_and_reduce_default_profile": summary(compile_samples),
        "build_bpf_with_libseccomp_once_per_profile": summary(build_samples),
        "load_bpf_in_init": summary(load_samples),
        "bpf_instructions": len(compiled["bpf"]) // 16,
        "rules_in_default_profile": len(description["rules"]),
        "architectures": len(description["arches"]),
        "cpus": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
