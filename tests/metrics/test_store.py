"""metrics-server without a cluster: the kubelet's text parsed, rates from two samples, and the
users the front proxy names (pure functions; the server is tested in test_metrics_server.py)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from provisioner.components.kubelet.resourcemetrics import node_cpu_seconds, render
from provisioner.components.metricsserver.api import table
from provisioner.components.metricsserver.auth import AuthConfig, User, user_from_headers
from provisioner.components.metricsserver.scraper import parse
from provisioner.components.metricsserver.store import NodeSample, Point, Store, usage

KUBELET_TEXT = """# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 100.5 1700000010000
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 2048000 1700000010000
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="app",namespace="ns",pod="web"} 3.25 1700000010000
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="app",namespace="ns",pod="web"} 1048576 1700000010000
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="app",namespace="ns",pod="web"} 1699999000 1700000010000
"""


def test_parse_reads_node_and_container_points_with_the_kubelets_timestamps():
    sample = parse(KUBELET_TEXT)
    assert sample.node == Point(1700000010.0, 100.5, 2048000)
    assert sample.containers == {("ns", "web", "app"): Point(1700000010.0, 3.25, 1048576, 1699999000.0)}


def test_what_the_kubelet_renders_metrics_server_parses():
    class View:
        name, started_at = "app", "2026-01-01T00:00:00Z"
    pod = {"metadata": {"name": "web", "namespace": "ns"}}
    text = render((12.5, 4096), [(pod, View(), {"cpu": 1.5, "memory": 2048})], False, 1700000000123)
    sample = parse(text)
    assert sample.node == Point(1700000000.123, 12.5, 4096)
    point = sample.containers[("ns", "web", "app")]
    assert (point.timestamp, point.cpu, point.memory) == (1700000000.123, 1.5, 2048)
    assert "pod_cpu_usage_seconds_total{namespace=\"ns\",pod=\"web\"} 1.500000000" in text


def test_node_cpu_is_busy_time_from_proc_stat():
    # user nice system idle iowait irq softirq steal, in USER_HZ ticks
    assert node_cpu_seconds("cpu  100 0 50 1000 200 0 50 0 0 0\ncpu0 1 2 3\n") == pytest.approx(200 / 100)


RATES = [
    ("cpu rate between the two samples", Point(10, 1.0, 5), Point(12, 2.0, 7), (500_000_000, 7, 2.0)),
    ("a restart in between counts from the start time", Point(10, 5.0, 5, 1), Point(14, 1.0, 9, 12),
     (500_000_000, 9, 2.0)),
    ("one sample is not a rate", None, Point(12, 2.0, 7), None),
    ("a sample no newer is not a rate", Point(12, 1.0, 5), Point(12, 2.0, 7), None),
]


@pytest.mark.parametrize("prev, last, expected", [c[1:] for c in RATES], ids=[c[0] for c in RATES])
def test_usage(prev, last, expected):
    u = usage(prev, last)
    assert (u.cpu_nanocores, u.memory_bytes, u.window) == expected if expected else u is None


def test_metrics_appear_after_two_scrapes_and_leave_with_the_node():
    store = Store()
    node = {"metadata": {"name": "n1", "labels": {"zone": "a"}}}
    pod = {"metadata": {"name": "web", "namespace": "ns", "labels": {"app": "web"}}}
    store.store({"n1": NodeSample(Point(10, 1.0, 4096), {("ns", "web", "app"): Point(10, 0.5, 2048)})})
    assert store.node_metrics(node) is None and store.pod_metrics(pod) is None
    store.store({"n1": NodeSample(Point(20, 6.0, 8192), {("ns", "web", "app"): Point(20, 1.5, 4096)})})
    assert store.node_metrics(node)["usage"] == {"cpu": "500000000n", "memory": "8Ki"}
    assert store.node_metrics(node)["metadata"]["labels"] == {"zone": "a"}
    metrics = store.pod_metrics(pod)
    assert metrics["containers"] == [{"name": "app", "usage": {"cpu": "100000000n", "memory": "4Ki"}}]
    assert metrics["window"] == "10s" and metrics["metadata"]["labels"] == {"app": "web"}
    store.store({})  # the node failed its scrape: its figures are not served stale
    assert store.node_metrics(node) is None and store.pod_metrics(pod) is None


HEADERS = [
    ("user, groups and escaped extra", {"X-Remote-User": "alice", "X-Remote-Group": "dev",
                                        "X-Remote-Extra-Example.com%2Fscopes": "read"},
     User("alice", ("dev",), (("example.com/scopes", ("read",)),))),
    ("no user header: nobody", {"X-Remote-Group": "dev"}, None),
]


@pytest.mark.parametrize("headers, expected", [c[1:] for c in HEADERS], ids=[c[0] for c in HEADERS])
def test_user_from_headers(headers, expected):
    assert user_from_headers(CIMultiDict(headers), AuthConfig()) == expected


def test_several_group_headers_are_all_groups():
    headers = CIMultiDict([("X-Remote-User", "bob"), ("X-Remote-Group", "a"), ("X-Remote-Group", "b")])
    assert user_from_headers(headers, AuthConfig()).groups == ("a", "b")


def test_the_configmap_names_the_headers():
    config = AuthConfig.from_configmap({"requestheader-username-headers": '["X-User"]',
                                        "requestheader-allowed-names": '["front-proxy-client"]'})
    assert config.username_headers == ["X-User"] and config.allowed_names == ["front-proxy-client"]
    assert config.group_headers == ["X-Remote-Group"]


def test_tables_sum_a_pods_containers_as_kubectl_get_shows_them():
    pod = {"metadata": {"name": "web", "namespace": "ns"}, "window": "10s",
           "containers": [{"name": "a", "usage": {"cpu": "150000000n", "memory": "2048Ki"}},
                          {"name": "b", "usage": {"cpu": "50000000n", "memory": "1024Ki"}}]}
    node = {"metadata": {"name": "n1"}, "window": "2s", "usage": {"cpu": "1000000000n", "memory": "1048576Ki"}}
    out = table([pod, node])
    assert [c["name"] for c in out["columnDefinitions"]] == ["Name", "CPU", "Memory", "Window"]
    assert [r["cells"] for r in out["rows"]] == [["web", "200m", "3Mi", "10s"], ["n1", "1000m", "1024Mi", "2s"]]
    assert out["rows"][0]["object"]["metadata"]["namespace"] == "ns"


def test_the_second_scrape_comes_soon_after_a_start_or_a_join_then_every_resolution(monkeypatch):
    """A usage needs two scrapes: with a 60 s resolution, `kubectl top` would otherwise have
    nothing for a minute after metrics-server starts."""
    import asyncio

    from provisioner.components.metricsserver import main

    periods: list[float] = []

    async def pause(seconds: float, wake) -> None:
        periods.append(seconds)
        if len(periods) == 6:
            raise asyncio.CancelledError
        if len(periods) == 3:
            listed.append({"metadata": {"name": "joined"}})   # a node joins

    listed = [{"metadata": {"name": "old"}}]

    class Scraper:
        async def scrape(self, nodes):
            return [node["metadata"]["name"] for node in nodes]

    class Informers:
        async def wait_for_sync(self):
            return None

    class Nodes:
        @staticmethod
        def add_handler(on_add):
            pass

        class store:
            @staticmethod
            def list():
                return list(listed)

    class Sink:
        """Two scrapes of a node give it a usage."""
        def __init__(self):
            self.seen: dict[str, int] = {}

        def store(self, names):
            for name in names:
                self.seen[name] = self.seen.get(name, 0) + 1

        def node_usage(self, name):
            return "usage" if self.seen.get(name, 0) >= 2 else None

    monkeypatch.setattr(main, "pause", pause)
    rounds = [0]
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main.scrape_forever(Scraper(), Nodes(), Informers(), Sink(), rounds, 60.0))
    assert rounds[0] == 6
    # after the start, one quick second scrape; then the resolution; a joined node is scraped
    # again quickly until it has a usage, then the resolution again
    assert periods[0] <= main.FIRST_RATE_SECONDS and periods[1] > 59 and periods[2] > 59
    assert periods[3] <= main.FIRST_RATE_SECONDS and periods[4] > 59 and periods[5] > 59
