"""kube-proxy's sync decisions without iptables (the restore call is the process boundary, replaced
by a recorder): partial syncs write only changed Services' chains, removed Services' chains are
deleted, and a failed iptables-restore is logged and followed by a full sync."""

from __future__ import annotations

import asyncio
import logging
import time

from provisioner.components.proxy.iptables import IptablesError
from provisioner.components.proxy.proxier import Proxier
from provisioner.components.proxy.rules import NodeContext


def service(name: str, ip: str) -> dict:
    return {"metadata": {"namespace": "ns", "name": name},
            "spec": {"clusterIP": ip, "ports": [{"port": 80, "protocol": "TCP"}]}}


def endpoint_slice(name: str, *addresses: str) -> dict:
    return {"metadata": {"namespace": "ns", "name": f"{name}-1",
                         "labels": {"kubernetes.io/service-name": name}},
            "ports": [{"port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses]}


class Recorder:
    def __init__(self, failures: int = 0):
        self.payloads: list[str] = []
        self.failures = failures

    def __call__(self, payload: str) -> None:
        self.payloads.append(payload)
        if self.failures:
            self.failures -= 1
            raise IptablesError("iptables-restore failed: line 7: RULE_APPEND failed")


def proxier(recorder: Recorder) -> Proxier:
    made = Proxier(NodeContext("n1"), min_sync_period=0, restore=recorder,
                   existing_chains=lambda: set())
    for name, ip, address in (("one", "10.96.0.11", "10.244.0.5"),
                              ("two", "10.96.0.12", "10.244.0.6")):
        made.service_changed(service(name, ip))
        made.slice_changed(endpoint_slice(name, address))
    return made


def test_partial_sync_writes_only_the_changed_service_and_removes_deleted_chains():
    recorder = Recorder()
    p = proxier(recorder)
    assert p.sync().full
    assert "10.244.0.5" in recorder.payloads[0] and "10.244.0.6" in recorder.payloads[0]
    p.slice_changed(endpoint_slice("one", "10.244.0.7"))
    plan = p.sync()
    assert not plan.full
    partial = recorder.payloads[-1]
    assert "10.244.0.7:8080" in partial and "10.244.0.6:8080" not in partial
    assert "-d 10.96.0.12/32" in partial         # top-level chains are whole every time
    old_sep = next(c for c in p.written["ns/one"] if c.startswith("KUBE-SEP-"))
    p.service_changed(service("one", "10.96.0.11"), deleted=True)
    p.sync()
    assert "-X KUBE-SVC-" in recorder.payloads[-1] and f"-X {old_sep}" in recorder.payloads[-1]
    assert "ns/one" not in p.written


def test_a_failed_restore_is_logged_and_followed_by_a_full_sync(caplog):
    recorder = Recorder(failures=1)
    p = proxier(recorder)

    async def scenario() -> None:
        p.wake = asyncio.Event()
        p.wake.set()
        task = asyncio.create_task(p.run(check_canary=lambda: True))
        # the restore runs in a thread: its payload is recorded before the loop commits the sync
        deadline = time.monotonic() + 30
        while len(recorder.payloads) < 2 or not p.last_sync:
            assert time.monotonic() < deadline and not task.done(), recorder.payloads
            await asyncio.sleep(0.01)
        task.cancel()
    with caplog.at_level(logging.ERROR, logger="kube-proxy"):
        asyncio.run(scenario())
    assert "RULE_APPEND failed" in caplog.text and "retrying with a full sync" in caplog.text
    assert "10.244.0.5" in recorder.payloads[1] and "10.244.0.6" in recorder.payloads[1]
    assert p.metrics.failures._value.get() == 1
    assert p.last_sync and not p.needs_full
