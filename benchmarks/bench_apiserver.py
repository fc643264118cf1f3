"""Measures the API server against the etcd under it, in one run on one local etcd.

- create, get and list (1,000 pods) through the API server (aiohttp with the admin client
  certificate, one keep-alive connection, one request at a time): median and p99 latency; the same
  operations done directly on etcd with aetcd (a create-if-absent transaction of the same JSON,
  a get of the key, a prefix range of the 1,000 keys); and the API/etcd ratio of each. Creates and
  gets alternate between the API server and etcd (pod i through the API, then key i on etcd), so
  both see the same load on a shared machine; lists run API first, then etcd. The API server's
  own CPU time per create (user + system, from /proc) is reported too: on a loaded machine it
  is a steadier figure than latency for judging the server's per-request work.
  `create_minimal_client` and `get_minimal_client` are the same requests through a second
  connection driven by a minimal HTTP/1.1 client (the request written in one piece, the response
  read by its Content-Length), in the same alternation against the same etcd samples: aiohttp's
  client spends about 0.2 ms of CPU per request, several times what kubectl's Go client does, so
  this figure is the API server's own cost against etcd's. Both figures are reported.
  Lists are served by the watch cache: `list` is a consistent read (resourceVersion ""),
  `list_rv0` resourceVersion "0"; the `*_same_objects` figures compare them with a raw etcd range
  over the API server's own stored pods (the same, larger, values), `list` with the client's JSON.
- `without_watch_cache`: list, create and watch delivery through a second API server on the same
  etcd with --watch-cache=false (every read from etcd, as before the cache), in the same run.
- creates per second through the API server with CONCURRENCY requests in flight.
- WATCHERS concurrent watch connections receiving CHANGES ConfigMap creations: delivery latency
  (from just before the create request is sent to the event's arrival at each watcher), median
  and p99 over all WATCHERS x CHANGES deliveries. Writer and watchers share one clock (one
  process); the client's own JSON parsing on a 2-core machine is included in the figure.

Starts etcd + the API server with provisioner.dev.DevCluster in a temporary directory and stops
both at the end. Writes benchmarks/results/apiserver.json and prints it. Run with
`.venv/bin/python benchmarks/bench_apiserver.py`.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provisioner.components.apiserver.storage import TLSClient, parse_etcd_url  # noqa: E402
from provisioner.dev import DevCluster, free_port  # noqa: E402

PODS = 1000
LIST_ROUNDS = 30
CONCURRENCY = 32
THROUGHPUT_PODS = 1000
WATCHERS = 100
CHANGES = 1000
NS = "bench"


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}}


def summary(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {"median_ms": round(s[len(s) // 2] * 1000, 3), "p99_ms": round(s[int(0.99 * (len(s) - 1))] * 1000, 3),
            "samples": len(s)}


async def timed(fn, *args) -> float:  # noqa: ANN001
    start = time.perf_counter()
    await fn(*args)
    return time.perf_counter() - start


class Api:
    def __init__(self, cluster: DevCluster, connections: int, base: str | None = None):
        ctx = ssl.create_default_context(cafile=str(cluster.pki / "ca.crt"))
        ctx.load_cert_chain(str(cluster.pki / "admin.crt"), str(cluster.pki / "admin.key"))
        self.base = base or cluster.server
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=connections))

    async def request(self, method: str, path: str, body: dict | None = None, expect: int = 200) -> bytes:
        async with self.session.request(method, self.base + path, json=body) as resp:
            data = await resp.read()
            if resp.status != expect:
                raise SystemExit(f"{method} {path}: {resp.status} {data[:300]!r}")
            return data


class MinimalClient:
    """One keep-alive HTTPS connection, one request at a time: the request line, headers and body
    written at once; the response read by its Content-Length (the server always sends one for
    these requests). Only what a fast client must do, so the figure is the server's."""

    def __init__(self, cluster: DevCluster):
        self.ctx = ssl.create_default_context(cafile=str(cluster.pki / "ca.crt"))
        self.ctx.load_cert_chain(str(cluster.pki / "admin.crt"), str(cluster.pki / "admin.key"))
        self.host, _, port = cluster.server.removeprefix("https://").rpartition(":")
        self.port = int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: dict | None = None, expect: int = 200) -> bytes:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, ssl=self.ctx)
        data = json.dumps(body).encode() if body is not None else b""
        self.writer.write(f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                          f"Accept: application/json\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        at = head.lower().index(b"\r\ncontent-length:") + 17
        payload = await self.reader.readexactly(int(head[at:head.index(b"\r\n", at)]))
        if status != expect:
            raise SystemExit(f"{method} {path}: {status} {payload[:300]!r}")
        return payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


def etcd_client(cluster: DevCluster) -> TLSClient:
    host, port = parse_etcd_url(cluster.etcd_url)
    p = cluster.pki
    return TLSClient(host, port, str(p / "etcd" / "ca.crt"), str(p / "apiserver-etcd-client.crt"),
                     str(p / "apiserver-etcd-client.key"))


DIRECT = b"/bench-direct/pods/bench/"
DIRECT_MINIMAL = b"/bench-direct-minimal/pods/bench/"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def figures(api: Api, minimal: MinimalClient, client: TLSClient,
                  server_pid: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(API server samples, etcd samples): creates and gets alternating between the two;
    through_api["server_cpu"] holds the API server's CPU seconds per create."""
    from aetcd import rpc, utils

    coll = f"/api/v1/namespaces/{NS}/pods"

    async def etcd_create(i: int, prefix: bytes = DIRECT) -> None:
        key = prefix + f"p{i:04d}".encode()
        await client.kvstub.Txn(rpc.TxnRequest(
            compare=[rpc.Compare(key=key, target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL, create_revision=0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=json.dumps(pod(f"p{i:04d}")).encode()))],
            failure=[]))

    async def etcd_get(i: int) -> None:
        await client.kvstub.Range(rpc.RangeRequest(key=DIRECT + f"p{i:04d}".encode()))

    async def etcd_list(key: bytes = DIRECT) -> None:
        resp = await client.kvstub.Range(rpc.RangeRequest(key=key, range_end=utils.prefix_range_end(key)))
        assert len(resp.kvs) == PODS

    through_api: dict[str, list[float]] = {"create": [], "get": [], "create_minimal_client": [],
                                           "get_minimal_client": []}
    direct: dict[str, list[float]] = {"create": [], "get": []}
    cpu_before = cpu_seconds(server_pid)
    for i in range(PODS):
        through_api["create"].append(await timed(api.request, "POST", coll, pod(f"p{i:04d}"), 201))
        direct["create"].append(await timed(etcd_create, i))
    through_api["server_cpu"] = [(cpu_seconds(server_pid) - cpu_before) / PODS]
    for i in range(PODS):
        through_api["get"].append(await timed(api.request, "GET", f"{coll}/p{i:04d}"))
        direct["get"].append(await timed(etcd_get, i))
    # the same alternation with the minimal client (its creates in a namespace of their own, its
    # etcd creates under a prefix of their own: the lists below count 1,000 of each)
    other = f"/api/v1/namespaces/{NS}-minimal/pods"
    for i in range(PODS):
        through_api["create_minimal_client"].append(
            await timed(minimal.request, "POST", other, pod(f"p{i:04d}"), 201))
        await etcd_create(i, DIRECT_MINIMAL)
        through_api["get_minimal_client"].append(await timed(minimal.request, "GET", f"{coll}/p{i:04d}"))
        await etcd_get(i)
    items = len(json.loads(await api.request("GET", coll))["items"])
    assert items == PODS, items
    through_api["list"] = [await timed(api.request, "GET", coll) for _ in range(LIST_ROUNDS)]
    through_api["list_rv0"] = [await timed(api.request, "GET", coll + "?resourceVersion=0") for _ in range(LIST_ROUNDS)]
    direct["list"] = [await timed(etcd_list) for _ in range(LIST_ROUNDS)]
    # the API server's own stored pods (defaults, managedFields, status: larger values)
    direct["list_stored"] = [await timed(etcd_list, f"/registry/pods/{NS}/".encode()) for _ in range(LIST_ROUNDS)]
    return through_api, direct


async def creates_per_second(api: Api) -> float:
    coll = f"/api/v1/namespaces/{NS}-tp/pods"
    await api.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": f"{NS}-tp"}}, 201)
    queue = list(range(THROUGHPUT_PODS))

    async def worker() -> None:
        while queue:
            i = queue.pop()
            await api.request("POST", coll, pod(f"t{i:04d}"), 201)
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return THROUGHPUT_PODS / (time.perf_counter() - start)


def added_name(line: bytes) -> str | None:
    """The object's name in an ADDED event line. A byte search, not a full JSON parse, keeps the
    client's share of the 2 cores small (100,000 events); checked against json.loads on the first."""
    if not line.startswith(b'{"type":"ADDED"'):
        return None
    start = line.index(b'"metadata":{"name":"') + 20
    return line[start:line.index(b'"', start)].decode()


async def watch_latency(cluster: DevCluster, base: str | None = None, ns: str = f"{NS}-watch") -> dict[str, float]:
    writer = Api(cluster, 1, base)
    watchers = Api(cluster, WATCHERS + 1, base)
    await writer.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": ns}}, 201)
    rv = json.loads(await writer.request("GET", f"/api/v1/namespaces/{ns}/configmaps"))["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    delays: list[float] = []
    ready = 0
    all_ready = asyncio.Event()

    async def watcher() -> None:
        nonlocal ready
        url = f"{watchers.base}/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=600"
        async with watchers.session.get(url) as resp:
            assert resp.status == 200, resp.status
            ready += 1
            if ready == WATCHERS:
                all_ready.set()
            seen = 0
            while seen < CHANGES:
                line = await resp.content.readline()
                arrived = time.perf_counter()
                if not line:
                    raise SystemExit("a watch ended early")
                name = added_name(line)
                if name is not None:
                    delays.append(arrived - sent[name])
                    seen += 1

    sample = b'{"type":"ADDED","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}}'
    assert added_name(sample) == json.loads(sample)["object"]["metadata"]["name"]
    tasks = [asyncio.create_task(watcher()) for _ in range(WATCHERS)]
    await asyncio.wait_for(all_ready.wait(), 60)
    await asyncio.sleep(0.5)  # the server has prepared each response before its etcd watch is open
    for i in range(CHANGES):
        name = f"c{i:04d}"
        sent[name] = time.perf_counter()
        await writer.request("POST", f"/api/v1/namespaces/{ns}/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"i": str(i)}}, 201)
    await asyncio.wait_for(asyncio.gather(*tasks), 300)
    await writer.session.close()
    await watchers.session.close()
    out = summary(delays)
    assert out["samples"] == WATCHERS * CHANGES
    return out


async def without_watch_cache(cluster: DevCluster, base: str) -> dict:
    """The same list (the same 1,000 stored pods), creates and watch delivery through a second API
    server on the same etcd started with --watch-cache=false: the server as it was before the cache."""
    api = Api(cluster, 1, base)
    try:
        coll = f"/api/v1/namespaces/{NS}/pods"
        lst = [await timed(api.request, "GET", coll) for _ in range(LIST_ROUNDS)]
        await api.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": f"{NS}-nocache"}}, 201)
        create = [await timed(api.request, "POST", f"/api/v1/namespaces/{NS}-nocache/pods", pod(f"n{i:04d}"), 201)
                  for i in range(PODS)]
    finally:
        await api.session.close()
    watch = await watch_latency(cluster, base, f"{NS}-watch-nocache")
    return {"list": summary(lst), "create": summary(create),
            "watch_delivery": dict(watch, watchers=WATCHERS, changes=CHANGES)}


def start_server(cluster: DevCluster, *flags: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(cluster.apiserver_command(port) + list(flags), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    cluster.wait_ready(60, port)
    return proc, f"https://127.0.0.1:{port}"


async def run(cluster: DevCluster) -> dict:
    api = Api(cluster, CONCURRENCY)
    try:
        for name in (NS, f"{NS}-minimal"):
            await api.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                             "metadata": {"name": name}}, 201)
        minimal = MinimalClient(cluster)
        client = etcd_client(cluster)
        await client.connect()
        try:
            server = next(p for p in cluster.procs if "provisioner.components.apiserver.main" in p.args)
            through_api, direct = await figures(api, minimal, client, server.pid)
        finally:
            await client.delete_prefix(DIRECT)
            await client.delete_prefix(DIRECT_MINIMAL)
            await client.close()
            await minimal.close()
        ops = {}
        # (figure, API operation, etcd operation)
        pairs = (("create", "create", "create"), ("get", "get", "get"),
                 ("create_minimal_client", "create_minimal_client", "create"),
                 ("get_minimal_client", "get_minimal_client", "get"), ("list", "list", "list"),
                 ("list_same_objects", "list", "list_stored"), ("list_rv0_same_objects", "list_rv0", "list_stored"))
        for figure, api_op, etcd_op in pairs:
            a, e = summary(through_api[api_op]), summary(direct[etcd_op])
            ops[figure] = {"apiserver": a, "etcd": e,
                           "ratio_median": round(a["median_ms"] / e["median_ms"], 2),
                           "ratio_p99": round(a["p99_ms"] / e["p99_ms"], 2)}
        ops["create"]["apiserver"]["server_cpu_ms_per_create"] = round(through_api["server_cpu"][0] * 1000, 3)
        cps = await creates_per_second(api)
    finally:
        await api.session.close()
    watch = await watch_latency(cluster)
    proc, base = start_server(cluster, "--watch-cache=false")
    try:
        before = await without_watch_cache(cluster, base)
    finally:
        proc.terminate()
        proc.wait(10)
    return {"pods_listed": PODS, "operations": ops,
            "creates_per_second": {"value": round(cps, 1), "concurrency": CONCURRENCY, "pods": THROUGHPUT_PODS},
            "watch_delivery": dict(watch, watchers=WATCHERS, changes=CHANGES),
            "without_watch_cache": before}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-apiserver-") as scratch:
        cluster = DevCluster(Path(scratch))
        cluster.start()
        try:
            figures = asyncio.run(run(cluster))
        finally:
            cluster.stop()
    figures["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()}
    out = ROOT / "benchmarks" / "results" / "apiserver.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
