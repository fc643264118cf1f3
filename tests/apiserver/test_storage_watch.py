"""Storage transactions on real etcd, watch resourceVersion rules (incl. 410 after compaction,
bookmarks), encryption at rest, and two API servers on one etcd acting as one."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from provisioner.components.apiserver.errors import ApiError
from provisioner.components.apiserver.storage import Storage, TLSClient, parse_etcd_url
from tests.conftest import free_port

from .conftest import another_apiserver, run


def storage_for(cluster) -> Storage:
    host, port = parse_etcd_url(cluster.etcd_url)
    p = cluster.pki
    return Storage(TLSClient(host, port, str(p / "etcd" / "ca.crt"), str(p / "apiserver-etcd-client.crt"),
                             str(p / "apiserver-etcd-client.key")), prefix="/unit-tests")


def obj(name, **extra):
    return dict({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": name}}, **extra)


def test_storage_transactions(cluster):
    async def go():
        s = storage_for(cluster)
        created = await s.create("things", "ns", "a", obj("a"))
        rv = int(created["metadata"]["resourceVersion"])
        raw = await s.client.get(s.key("things", "ns", "a"))
        assert raw.mod_revision == rv  # resourceVersion is the etcd mod revision
        assert b"resourceVersion" not in raw.value  # never stored, always derived
        with pytest.raises(ApiError) as exc:
            await s.create("things", "ns", "a", obj("a"))
        assert exc.value.reason == "AlreadyExists"
        updated = await s.update("things", "ns", "a", obj("a", data={"x": "1"}), rv)
        with pytest.raises(ApiError) as exc:
            await s.update("things", "ns", "a", obj("a", data={"x": "2"}), rv)
        assert exc.value.code == 409
        with pytest.raises(ApiError) as exc:
            await s.delete("things", "ns", "a", rv)
        assert exc.value.code == 409
        await s.delete("things", "ns", "a", int(updated["metadata"]["resourceVersion"]))
        assert await s.get("things", "ns", "a") is None
        await s.client.close()
    run(go())


def test_list_pages_are_consistent_at_one_revision(cluster):
    async def go():
        s = storage_for(cluster)
        for i in range(5):
            await s.create("paged", None, f"o{i}", obj(f"o{i}"))
        page, rev, nxt = await s.list("paged", None, limit=2)
        assert [o["metadata"]["name"] for o in page] == ["o0", "o1"] and nxt
        await s.create("paged", None, "o2a", obj("o2a"))  # written after the first page
        rest, rev2, nxt2 = await s.list("paged", None, limit=10, start_key=nxt, revision=rev)
        assert rev2 == rev and nxt2 is None
        assert [o["metadata"]["name"] for o in rest] == ["o2", "o3", "o4"]
        await s.client.close()
    run(go())


def test_watch_starts_after_the_given_revision(cluster):
    async def go():
        s = storage_for(cluster)
        a = await s.create("watched", "n", "a", obj("a"))
        rv = int(a["metadata"]["resourceVersion"])
        b = await s.update("watched", "n", "a", obj("a", data={"k": "v"}), rv)
        await s.delete("watched", "n", "a", int(b["metadata"]["resourceVersion"]))
        seen = []
        async for ev in s.watch("watched", "n", rv + 1):
            seen.append((ev.type, ev.revision))
            if len(seen) == 2:
                break
        assert seen == [("MODIFIED", int(b["metadata"]["resourceVersion"])), ("DELETED", seen[1][1])]
        assert seen[1][1] > int(b["metadata"]["resourceVersion"])
        await s.client.close()
    run(go())


def watch_lines(raw, path, count, timeout=30):
    import http.client

    conn = http.client.HTTPSConnection("127.0.0.1", raw.port, context=raw.context("admin"), timeout=timeout)
    conn.request("GET", path)
    resp = conn.getresponse()
    assert resp.status == 200
    out = []
    while len(out) < count:
        line = resp.readline()
        if not line:
            break
        out.append(json.loads(line))
    conn.close()
    return out


def test_watch_from_compacted_revision_is_410_error_event(cluster, raw, ns, kubectl):
    kubectl("create", "configmap", "c1", "-n", ns)
    old = kubectl.json("get", "configmap", "c1", "-n", ns)["metadata"]["resourceVersion"]
    kubectl("create", "configmap", "c2", "-n", ns)
    latest = int(kubectl.json("get", "configmap", "c2", "-n", ns)["metadata"]["resourceVersion"])

    async def compact():
        s = storage_for(cluster)
        await s.client.compact(latest)
        await s.client.close()
    run(compact())
    events = watch_lines(raw, f"/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={int(old) - 1}", 1)
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"
    assert events[0]["object"]["message"].startswith("too old resource version")
    status, _, body = raw("GET", f"/api/v1/namespaces/{ns}/configmaps?resourceVersion={int(old) - 1}"
                          f"&resourceVersionMatch=Exact")
    assert status == 410


def test_watch_bookmarks_when_asked(raw, ns):
    rv = json.loads(raw("GET", f"/api/v1/namespaces/{ns}/configmaps")[2])["metadata"]["resourceVersion"]
    events = watch_lines(raw, f"/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={rv}"
                              "&allowWatchBookmarks=true&timeoutSeconds=20", 1)  # bookmarks every 5 s
    assert events[0]["type"] == "BOOKMARK"
    assert events[0]["object"]["kind"] == "ConfigMap" and events[0]["object"]["metadata"]["resourceVersion"] == rv


def test_secrets_are_encrypted_at_rest(cluster, kubectl, ns):
    kubectl("create", "secret", "generic", "topsecret", "--from-literal=password=hunter2", "-n", ns)

    async def read():
        s = storage_for(cluster)
        raw_kv = await s.client.get(f"/registry/secrets/{ns}/topsecret".encode())
        await s.client.close()
        return raw_kv.value
    stored = run(read())
    assert stored.startswith(b"k8s:enc:aescbc:v1:key1:")
    assert b"hunter2" not in stored and b"aHVudGVyMg" not in stored
    data = kubectl.json("get", "secret", "topsecret", "-n", ns)["data"]
    assert data == {"password": "aHVudGVyMg=="}


@pytest.fixture(scope="module")
def second_server(cluster):
    port = free_port()
    with another_apiserver(cluster, port, cluster.apiserver_command(port)):
        yield port


def test_two_api_servers_on_one_etcd_behave_as_one(raw, second_server, ns):
    first = raw.port

    def create(i):
        port = first if i % 2 else second_server
        raw.port = port
        body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}"},
                "spec": {"type": "NodePort", "ports": [{"port": 80}]}}
        import http.client
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=raw.context("admin"), timeout=30)
        conn.request("POST", f"/api/v1/namespaces/{ns}/services", body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        out = (resp.status, json.loads(resp.read()))
        conn.close()
        return out

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(24)))
    raw.port = first
    assert all(status == 201 for status, _ in results), results
    ips = [o["spec"]["clusterIP"] for _, o in results]
    ports = [o["spec"]["ports"][0]["nodePort"] for _, o in results]
    assert len(set(ips)) == len(ips) and len(set(ports)) == len(ports)
    # a write through one server is read back, with the same resourceVersion, through the other
    s1, _, b1 = raw("GET", f"/api/v1/namespaces/{ns}/services/s1")
    raw.port = second_server
    s2, _, b2 = raw("GET", f"/api/v1/namespaces/{ns}/services/s1")
    raw.port = first
    assert s1 == s2 == 200 and json.loads(b1)["metadata"]["resourceVersion"] == json.loads(b2)["metadata"]["resourceVersion"]


def test_watchers_share_one_etcd_watch_without_changing_what_they_see(cluster):
    from provisioner.components.apiserver.watchhub import WatchHubs

    async def collect(hubs, ns, start, count, out):
        async for ev in hubs.watch("hubbed", ns, start):
            out.append((ev.type, ev.obj["metadata"]["name"], ev.revision))
            if len(out) == count:
                return

    async def go():
        s = storage_for(cluster)
        hubs = WatchHubs(s)
        start = await s.current_revision() + 1
        in_a1, in_a2, everywhere = [], [], []
        tasks = [asyncio.create_task(collect(hubs, "a", start, 2, in_a1)),
                 asyncio.create_task(collect(hubs, "a", start, 2, in_a2)),
                 asyncio.create_task(collect(hubs, None, start, 3, everywhere))]
        while len(hubs.hubs.get("hubbed").subscribers if "hubbed" in hubs.hubs else ()) < 3:
            await asyncio.sleep(0.01)
        await s.create("hubbed", "a", "x", obj("x"))
        await s.create("hubbed", "b", "y", obj("y"))
        await s.create("hubbed", "a", "z", obj("z"))
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        assert [e[:2] for e in in_a1] == [("ADDED", "x"), ("ADDED", "z")] and in_a2 == in_a1
        assert [e[1] for e in everywhere] == ["x", "y", "z"]
        assert "hubbed" not in hubs.hubs  # the last subscriber leaving closes the shared etcd watch
        # a watcher from a revision the hub has already passed gets its own, exact, etcd watch
        late: list = []
        await asyncio.wait_for(collect(hubs, None, start, 3, late), 10)
        assert late == everywhere
        await s.client.delete_prefix(b"/unit-tests/hubbed/")
        await s.client.close()
    run(go())
