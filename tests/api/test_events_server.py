"""The event recorder (client-go's Event objects and count aggregation) and the component secure port."""

from __future__ import annotations

import asyncio
import ssl
import urllib.error
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from provisioner.components.api.events import EventRecorder
from provisioner.components.api.server import ComponentServer


def test_repeated_events_are_one_event_with_a_count(make_client, ns_name):
    async def main():
        async with make_client() as client:
            await client.create("", "v1", "namespaces", {"metadata": {"name": ns_name}})
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns_name, "uid": "u1"}}
            node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": ns_name + "-node"}}
            rec = EventRecorder(client, "default-scheduler", host="cp1")
            for _ in range(3):
                rec.record_event(pod, "Warning", "FailedScheduling", "0/1 nodes are available: 1 Insufficient cpu.")
            rec.record_event(pod, "Normal", "Scheduled", "Successfully assigned")
            rec.record_event(node, "Normal", "RegisteredNode", "registered")
            await rec.flush()
            events = (await client.list("", "v1", "events", ns_name))["items"]
            by_reason = {e["reason"]: e for e in events}
            assert sorted(by_reason) == ["FailedScheduling", "Scheduled"]
            failed = by_reason["FailedScheduling"]
            assert failed["count"] == 3 and failed["type"] == "Warning"
            assert failed["involvedObject"] == {"kind": "Pod", "apiVersion": "v1", "name": "p", "namespace": ns_name,
                                                "uid": "u1"}
            assert failed["source"] == {"component": "default-scheduler", "host": "cp1"}
            assert failed["metadata"]["name"].startswith("p.")
            assert failed["lastTimestamp"] >= failed["firstTimestamp"]
            defaults = (await client.list("", "v1", "events", "default"))["items"]
            assert any(e["involvedObject"]["name"] == ns_name + "-node" for e in defaults)
            await rec.close()
    asyncio.run(main())


def get(url: str, ctx: ssl.SSLContext) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_secure_port_serves_health_to_anyone_and_metrics_to_monitoring_certificates(cluster):
    registry = CollectorRegistry()
    Counter("scheduler_schedule_attempts", "attempts", registry=registry).inc()
    ready = {"synced": False}
    server = ComponentServer("kube-scheduler", bind_address="127.0.0.1", port=0,
                             client_ca_pem=(cluster.pki / "ca.crt").read_bytes(), registry=registry,
                             readyz={"informer-sync": lambda: ready["synced"]})

    async def main():
        port = await server.start()
        loop = asyncio.get_running_loop()
        anon = ssl.create_default_context()
        anon.check_hostname, anon.verify_mode = False, ssl.CERT_NONE  # a self-signed serving certificate
        admin = ssl.create_default_context()
        admin.check_hostname, admin.verify_mode = False, ssl.CERT_NONE
        admin.load_cert_chain(str(cluster.pki / "admin.crt"), str(cluster.pki / "admin.key"))
        cert, key = cluster.issue_user("someone", ("devs",))
        user = ssl.create_default_context()
        user.check_hostname, user.verify_mode = False, ssl.CERT_NONE
        user.load_cert_chain(str(cert), str(key))
        base = f"https://127.0.0.1:{port}"

        def call(path, ctx):
            return loop.run_in_executor(None, get, base + path, ctx)
        assert await call("/livez", anon) == (200, "ok")
        status, body = await call("/readyz?verbose", anon)
        assert status == 500 and "[-]informer-sync failed" in body
        assert await call("/healthz", anon) == (200, "ok")  # liveness does not wait for caches
        ready["synced"] = True
        assert await call("/readyz", anon) == (200, "ok")
        server.livez["leaderElection"] = lambda: False  # checks added after start count too
        status, body = await call("/healthz?verbose", anon)
        assert status == 500 and "[-]leaderElection failed" in body
        server.livez.clear()
        assert await call("/healthz", anon) == (200, "ok")
        assert (await call("/metrics", anon))[0] == 403  # anonymous, and not allowed
        assert (await call("/metrics", user))[0] == 403
        status, body = await call("/metrics", admin)
        assert status == 200 and "scheduler_schedule_attempts_total 1.0" in body
        await server.stop()
    asyncio.run(main())
