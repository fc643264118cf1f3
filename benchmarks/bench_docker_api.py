"""Measures the runtime's Docker Engine API against its own API, with clients no one here wrote.

- `docker run --rm busybox true` through the docker CLI (the machine's client binary) against
  this daemon's Docker socket, beside `provisioner-runtime run --rm busybox true` (the project's
  own CLI) and, when installed, `podman run --rm busybox true`: wall time per run, median and
  p99 over RUNS runs.
- API latency of create + start through docker-py's low-level client (the container's exit is
  not waited for), and of create + start through the daemon's own API (RuntimeClient).

Starts its own daemon on a temporary root with its own bridge and subnet and removes all of it
at the end. Writes benchmarks/results/docker_api.json and prints it. Run as root:
`.venv/bin/python benchmarks/bench_docker_api.py` (BENCH_DOCKER_RUNS=N for fewer runs).
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402 - after sys.path

from provisioner.components.runtime.client import RuntimeClient  # noqa: E402
from provisioner.components.runtime.net import Network  # noqa: E402

RUNS = int(os.environ.get("BENCH_DOCKER_RUNS", "30"))
WARMUP = 2
BRIDGE = "prtb1"
SUBNET = "10.197.1.0/24"
CGROUP_PARENT = "provisioner-runtime-bench-docker"
RESULTS = ROOT / "benchmarks" / "results" / "docker_api.json"
CLI = [sys.executable, "-m", "provisioner.components.runtime.cli"]
PODMAN_CONF = str(ROOT / "benchmarks" / "podman-containers.conf")


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered) * 1000, 1),
            "p99_ms": round(ordered[math.ceil(0.99 * len(ordered)) - 1] * 1000, 1),
            "runs": len(ordered)}


def timed_runs(command: list[str], env: dict | None = None) -> dict:
    samples = []
    for index in range(WARMUP + RUNS):
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(f"{' '.join(command)} failed: {result.stderr}")
        if index >= WARMUP:
            samples.append(elapsed)
    return summary(samples)


def podman_command(scratch: str, api: docker.APIClient) -> list[str] | None:
    """podman on a store of its own under `scratch`, holding the same busybox image (saved from
    this daemon, loaded into podman), or None when podman is not installed.

    No systemd here: cgroupfs and a file for events; runc as the OCI runtime (the anchor of the
    runtime's own benchmark). PODMAN_CONF drops podman's default ulimits, which ask for more
    open files and processes than this machine lets anyone set."""
    podman = shutil.which("podman")
    if not podman:
        return None
    command = [podman, "--root", os.path.join(scratch, "podman"), "--runroot",
               os.path.join(scratch, "podman-run"), "--cgroup-manager", "cgroupfs",
               "--events-backend", "file", "--runtime", "runc"]
    archive = os.path.join(scratch, "busybox.tar")
    with open(archive, "wb") as out:
        for chunk in api.get_image("busybox"):
            out.write(chunk)
    subprocess.run([*command, "load", "-q", "-i", archive], check=True, capture_output=True,
                   env={**os.environ, "CONTAINERS_CONF": PODMAN_CONF})
    return command


def main() -> None:
    scratch = tempfile.mkdtemp(prefix="bench-docker-api-")
    root, socket = os.path.join(scratch, "root"), os.path.join(scratch, "runtime.sock")
    docker_socket = os.path.join(scratch, "docker.sock")
    log = open(os.path.join(scratch, "daemon.log"), "wb")
    daemon = subprocess.Popen([*CLI, "daemon", "--root", root, "--socket", socket, "--bridge",
                               BRIDGE, "--subnet", SUBNET, "--cgroup-parent", CGROUP_PARENT],
                              stdout=log, stderr=log, start_new_session=True)
    own = RuntimeClient(socket, timeout=120)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(docker_socket):
            if daemon.poll() is not None or time.monotonic() > deadline:
                sys.exit(Path(scratch, "daemon.log").read_text())
            time.sleep(0.05)
        env = {**os.environ, "DOCKER_HOST": f"unix://{docker_socket}",
               "DOCKER_CONFIG": os.path.join(scratch, "docker-config")}
        results: dict = {"runs": RUNS}
        docker_cli = shutil.which("docker")
        if docker_cli:
            results["docker_cli_run_rm_true"] = timed_runs(
                [docker_cli, "run", "--rm", "busybox", "true"], env)
        results["own_cli_run_rm_true"] = timed_runs(
            [*CLI, "--socket", socket, "run", "--rm", "busybox", "true"])
        api = docker.APIClient(base_url=f"unix://{docker_socket}")
        podman = podman_command(scratch, api)
        results["podman_run_rm_true"] = (timed_runs([*podman, "run", "--rm", "busybox", "true"],
                                                    {**os.environ, "CONTAINERS_CONF": PODMAN_CONF})
                                         if podman else "podman is not installed")
        samples = []
        for _ in range(RUNS):
            started = time.perf_counter()
            container = api.create_container("busybox", ["sleep", "30"])
            api.start(container["Id"])
            samples.append(time.perf_counter() - started)
            api.remove_container(container["Id"], force=True)
        results["docker_api_create_start"] = summary(samples)
        samples = []
        for _ in range(RUNS):
            started = time.perf_counter()
            container_id = own.create("busybox", cmd=["sleep", "30"])
            own.start(container_id)
            samples.append(time.perf_counter() - started)
            own.remove(container_id, force=True)
        results["own_api_create_start"] = summary(samples)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        Network(bridge=BRIDGE, subnet=SUBNET,
                state_dir=os.path.join(root, "network")).teardown_all()
        if shutil.which("podman"):  # its containers are gone (--rm); its store goes with scratch
            subprocess.run(["umount", "-R", os.path.join(scratch, "podman")], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
