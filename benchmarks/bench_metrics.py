"""Measures the resource metrics API on a one-machine cluster (`provisioner dev cluster`'s
DevNodeCluster: metrics-server behind the API server's aggregation layer).

- Seconds from metrics-server's start until `kubectl top nodes` first answers (the APIService
  check, two scrapes at the dev resolution of 2 s).
- Latency of GET /apis/metrics.k8s.io/v1beta1/nodes: REQUESTS sequential requests through the
  API server's aggregation proxy and straight to metrics-server (front-proxy certificate and
  X-Remote-User, as the proxy sends them); p50 and p99, so the proxy's own cost shows.
- Wall time of one `kubectl top pods -A`.
- metrics-server's resident memory (MiB) after the measurements.

Needs root (containers). Writes benchmarks/results/metrics.json and prints it. Run with
`sudo .venv/bin/python benchmarks/bench_metrics.py`.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provisioner.dev import DevNodeCluster  # noqa: E402

KUBECTL = str(Path(sys.prefix) / "bin" / "kubectl")
REQUESTS = int(os.environ.get("BENCH_REQUESTS", 200))
PATH = "/apis/metrics.k8s.io/v1beta1/nodes"


def latencies(port: int, ctx: ssl.SSLContext, headers: dict) -> list[float]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    out = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        conn.request("GET", PATH, headers=headers)
        reply = conn.getresponse()
        reply.read()
        assert reply.status == 200, reply.status
        out.append((time.perf_counter() - start) * 1000)
    conn.close()
    return out


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2)}


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-metrics-", dir="/tmp"))
    cluster = DevNodeCluster(root, node_name="bench-metrics", log=lambda _: None)
    cluster.start()
    started = time.monotonic()
    try:
        env = dict(os.environ, KUBECONFIG=str(cluster.api.kubeconfig))
        while subprocess.run([KUBECTL, "top", "nodes"], capture_output=True, env=env).returncode != 0:
            if time.monotonic() - started > 120:
                raise SystemExit("kubectl top nodes did not answer within 120 s")
            time.sleep(0.2)
        first_top = time.monotonic() - started
        pki = cluster.api.pki
        via_api = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        via_api.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        direct = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        direct.check_hostname = False
        direct.load_cert_chain(str(pki / "front-proxy-client.crt"), str(pki / "front-proxy-client.key"))
        args = cluster.procs["metrics-server"].args
        ms_port = int(args[args.index("--secure-port") + 1])
        through = latencies(cluster.api.api_port, via_api, {})
        straight = latencies(ms_port, direct, {"X-Remote-User": "kubernetes-admin",
                                               "X-Remote-Group": "system:masters"})
        t0 = time.perf_counter()
        subprocess.run([KUBECTL, "top", "pods", "-A"], capture_output=True, env=env, check=True)
        top_pods = time.perf_counter() - t0
        rss_kib = int(next(line.split()[1] for line in
                           Path(f"/proc/{cluster.procs['metrics-server'].pid}/status").read_text().splitlines()
                           if line.startswith("VmRSS:")))
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)
    result = {
        "benchmark": "metrics",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "requests": REQUESTS,
        "figures": {
            "first_kubectl_top_nodes_seconds": round(first_top, 2),
            "nodes_through_aggregator": summary(through),
            "nodes_direct_to_metrics_server": summary(straight),
            "kubectl_top_pods_all_seconds": round(top_pods, 3),
            "metrics_server_rss_mib": round(rss_kib / 1024, 1),
        },
    }
    out = ROOT / "benchmarks" / "results" / "metrics.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
