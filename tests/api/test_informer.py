"""Shared informers against a real API server: list then watch, handlers, indexes, sharing, 410 re-list."""

from __future__ import annotations

import asyncio
import subprocess

from provisioner.components.api.informer import Informer, InformerFactory
from provisioner.dev import _binary


async def until(check, timeout: float = 20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.05)


def cm(name: str, ns: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "data": {"k": "v"}}


class Recorder:
    def __init__(self):
        self.events: list[tuple[str, str]] = []

    def add(self, obj):
        self.events.append(("add", obj["metadata"]["name"]))

    def update(self, old, new):
        self.events.append(("update", new["metadata"]["name"]))

    def delete(self, obj):
        self.events.append(("delete", obj["metadata"]["name"]))


async def make_ns(client, ns):
    await client.create("", "v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})


def test_informer_lists_existing_objects_then_sees_adds_updates_and_deletes(make_client, ns_name):
    async def main():
        async with make_client() as client:
            await make_ns(client, ns_name)
            await client.create("", "v1", "configmaps", cm("before", ns_name), ns_name)
            inf = Informer(client, "", "v1", "configmaps", namespace=ns_name)
            rec = Recorder()
            inf.add_handler(rec.add, rec.update, rec.delete)
            inf.start()
            await asyncio.wait_for(inf.wait_synced(), 20)
            assert inf.has_synced()
            assert ("add", "before") in rec.events
            assert inf.get(f"{ns_name}/before")["data"] == {"k": "v"}

            await client.create("", "v1", "configmaps", cm("after", ns_name), ns_name)
            await client.patch("", "v1", "configmaps", "before", {"data": {"k": "w"}}, ns_name)
            await client.delete("", "v1", "configmaps", "after", ns_name)
            await until(lambda: ("delete", "after") in rec.events)
            assert rec.events.index(("add", "after")) < rec.events.index(("delete", "after"))
            assert ("update", "before") in rec.events
            assert inf.get(f"{ns_name}/before")["data"] == {"k": "w"}
            assert inf.get(f"{ns_name}/after") is None
            await inf.stop()
    asyncio.run(main())


def test_extra_indexes_follow_changes(make_client, ns_name):
    async def main():
        async with make_client() as client:
            await make_ns(client, ns_name)
            inf = Informer(client, "", "v1", "configmaps", namespace=ns_name)
            inf.add_indexer("app", lambda o: [(o["metadata"].get("labels") or {}).get("app", "")])
            inf.start()
            await inf.wait_synced()
            await client.create("", "v1", "configmaps", cm("a", ns_name, app="web"), ns_name)
            await client.create("", "v1", "configmaps", cm("b", ns_name, app="db"), ns_name)
            await until(lambda: len(inf.by_index("app", "web")) == 1 and len(inf.by_index("app", "db")) == 1)
            await client.patch("", "v1", "configmaps", "b", {"metadata": {"labels": {"app": "web"}}}, ns_name)
            await until(lambda: len(inf.by_index("app", "web")) == 2)
            assert inf.by_index("app", "db") == []
            assert {o["metadata"]["name"] for o in inf.by_index("namespace", ns_name)} == {"a", "b"}
            await inf.stop()
    asyncio.run(main())


def test_factory_shares_one_informer_and_late_handlers_see_the_cache(make_client, ns_name):
    async def main():
        async with make_client() as client:
            await make_ns(client, ns_name)
            await client.create("", "v1", "configmaps", cm("x", ns_name), ns_name)
            factory = InformerFactory(client)
            first = factory.informer("", "v1", "configmaps", namespace=ns_name)
            assert factory.informer("", "v1", "configmaps", namespace=ns_name) is first
            assert factory.informer("", "v1", "configmaps") is not first
            factory.start()
            assert await factory.wait_for_sync(20)
            late = Recorder()
            first.add_handler(late.add)
            assert late.events == [("add", "x")]
            await factory.stop()
    asyncio.run(main())


def test_a_compacted_resource_version_makes_the_informer_list_again_and_emit_the_difference(
        cluster, make_client, ns_name):
    async def main():
        async with make_client() as client:
            await make_ns(client, ns_name)
            await client.create("", "v1", "configmaps", cm("stays", ns_name), ns_name)
            await client.create("", "v1", "configmaps", cm("goes", ns_name), ns_name)
            inf = Informer(client, "", "v1", "configmaps", namespace=ns_name)
            rec = Recorder()
            inf.add_handler(rec.add, rec.update, rec.delete)
            inf.start()
            await inf.wait_synced()
            await inf.stop()
            # while it is not watching: one object goes, one comes, and etcd forgets the history
            await client.delete("", "v1", "configmaps", "goes", ns_name)
            await client.create("", "v1", "configmaps", cm("new", ns_name), ns_name)
            latest = await client.create("", "v1", "configmaps", cm("newest", ns_name), ns_name)
            rev = int(latest["metadata"]["resourceVersion"])
            p = cluster.pki
            subprocess.run([_binary("etcdctl"), "--endpoints", cluster.etcd_url, "--cacert", str(p / "etcd" / "ca.crt"),
                            "--cert", str(p / "apiserver-etcd-client.crt"), "--key",
                            str(p / "apiserver-etcd-client.key"), "compact", str(rev)],
                           check=True, capture_output=True)
            inf.start()  # resumes its watch from the old resourceVersion: 410 Gone, then a fresh list
            await until(lambda: inf.relists == 2 and ("delete", "goes") in rec.events)
            assert ("add", "new") in rec.events and ("add", "newest") in rec.events
            assert sorted(o["metadata"]["name"] for o in inf.list()) == ["new", "newest", "stays"]
            await inf.stop()
    asyncio.run(main())
