"""Scheduled events wait behind bindings (eventpacing.py), hermetically: a fake recorder stands in
for the API server; no timing is asserted, only what is handed over while bindings are in flight and
after they end."""

from __future__ import annotations

import asyncio

from provisioner.components.scheduler import eventpacing
from provisioner.components.scheduler.eventpacing import EventPacer


class Recorder:
    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.written: list[str] = []

    def record_event(self, obj, etype, reason, message) -> None:
        self.written.append(message)


async def until(check, what: str) -> None:
    for _ in range(10_000):
        if check():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never: {what}")


def test_events_are_paced_while_bindings_run_and_flow_when_they_end():
    async def main():
        state = {"binding": True}
        pacer = EventPacer(lambda: state["binding"], qps=0.001, burst=2)  # no refill within the test
        rec = Recorder()
        for i in range(5):
            pacer.record(rec, {}, "Normal", "Scheduled", f"pod-{i}")
        await until(lambda: len(rec.written) == 2, "the burst handed over")
        for _ in range(50):  # the pump keeps running; nothing more may pass while bindings are written
            await asyncio.sleep(0)
        assert rec.written == ["pod-0", "pod-1"]
        state["binding"] = False
        await until(lambda: len(rec.written) == 5, "the rest once bindings end")
        assert rec.written == [f"pod-{i}" for i in range(5)]  # in order
        await pacer.close()
    asyncio.run(main())


def test_a_full_backlog_drops_the_oldest(monkeypatch):
    monkeypatch.setattr(eventpacing, "BACKLOG", 3)

    async def main():
        pacer = EventPacer(lambda: True, qps=0.001, burst=0)
        rec = Recorder()
        for i in range(5):
            pacer.record(rec, {}, "Normal", "Scheduled", f"pod-{i}")
        assert [e[4] for e in pacer.backlog] == ["pod-2", "pod-3", "pod-4"] and pacer.dropped == 2
        await pacer.close()
    asyncio.run(main())
