"""What admission costs a pod create: the same creates with kube-apiserver's default admission
plugins (ServiceAccount token volume, Priority, LimitRanger, ResourceQuota, PodSecurity, ...
with a LimitRange, a ResourceQuota and PodSecurity labels present in the namespace) and with
every plugin turned off (--disable-admission-plugins), each on its own fresh etcd + API server,
one request at a time over one keep-alive connection; median and p99 latency.

Writes benchmarks/results/admission.json and prints it. Run with
`.venv/bin/python benchmarks/bench_admission.py`.
"""

from __future__ import annotations

import asyncio
import json
import platform
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provisioner.components.apiserver.admission import DEFAULT  # noqa: E402
from provisioner.dev import DevCluster  # noqa: E402

CREATES = 300
NS = "bench"


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "c", "image": "registry.example/app:1",
                                     "resources": {"requests": {"cpu": "10m"}}}]}}


async def measure(cluster: DevCluster) -> dict[str, float]:
    ctx = ssl.create_default_context(cafile=str(cluster.pki / "ca.crt"))
    ctx.load_cert_chain(str(cluster.pki / "admin.crt"), str(cluster.pki / "admin.key"))
    base = cluster.server
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=1)) as s:
        async def post(path: str, body: dict) -> None:
            async with s.post(base + path, json=body) as r:
                if r.status != 201:
                    raise RuntimeError(f"{path}: {r.status} {await r.text()}")
        await post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": NS, "labels": {"pod-security.kubernetes.io/enforce": "baseline",
                                   "pod-security.kubernetes.io/warn": "restricted"}}})
        for _ in range(50):  # the namespace's default service account comes with it
            async with s.get(f"{base}/api/v1/namespaces/{NS}/serviceaccounts/default") as r:
                if r.status == 200:
                    break
            await asyncio.sleep(0.1)
        await post(f"/api/v1/namespaces/{NS}/limitranges", {"apiVersion": "v1", "kind": "LimitRange",
                   "metadata": {"name": "l"}, "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}}]}})
        await post(f"/api/v1/namespaces/{NS}/resourcequotas", {"apiVersion": "v1", "kind": "ResourceQuota",
                   "metadata": {"name": "q"}, "spec": {"hard": {"pods": "100000", "requests.cpu": "1000"}}})
        samples = []
        for i in range(CREATES):
            start = time.perf_counter()
            await post(f"/api/v1/namespaces/{NS}/pods", pod(f"p{i}"))
            samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 2),
            "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 2)}


def run(extra: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-admission-") as tmp:
        cluster = DevCluster(Path(tmp), extra_args=extra)
        cluster.start()
        try:
            return asyncio.run(measure(cluster))
        finally:
            cluster.stop()


def main() -> None:
    default = run([])
    none = run(["--disable-admission-plugins", ",".join(DEFAULT)])
    result = {"benchmark": "admission", "creates": CREATES, "machine": platform.machine(),
              "pod_create_default_admission": default, "pod_create_no_admission": none,
              "ratio_median": round(default["median_ms"] / none["median_ms"], 2)}
    out = ROOT / "benchmarks" / "results" / "admission.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
