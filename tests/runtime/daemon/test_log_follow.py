"""`logs --follow` (daemon/logs.follow) over the shim's real CRI log writer: every line the
container wrote comes out, also the last ones written just before the exit was noticed, and the
stream ends once the container has exited. Hermetic: the shim's writes and the exit are played
by the test at the moments that matter."""

from __future__ import annotations

import asyncio

from provisioner.components.runtime.container.crilog import CriLogWriter
from provisioner.components.runtime.daemon import logs


def followed(path: str, still_running) -> list[tuple[str, bytes]]:
    async def collect() -> list[tuple[str, bytes]]:
        return [(entry.stream, entry.data)
                async for entry in logs.follow(path, still_running, poll_seconds=0.01)]
    return asyncio.run(asyncio.wait_for(collect(), 10))


def test_lines_written_between_the_last_read_and_the_exit_check_are_not_lost(tmp_path):
    path = str(tmp_path / "container.log")
    writer = CriLogWriter(path, 1 << 20)
    writer.write("stdout", b"first\n")

    def exits_right_after_writing_its_last_lines() -> bool:
        # the follower has read up to "first" and now asks whether the container still runs:
        # meanwhile the container wrote its last lines and exited
        writer.write("stdout", b"out\n")
        writer.write("stderr", b"err\n")
        return False

    assert followed(path, exits_right_after_writing_its_last_lines) == [
        ("stdout", b"first\n"), ("stdout", b"out\n"), ("stderr", b"err\n")]


def test_lines_come_while_the_container_runs_and_the_stream_ends_at_its_exit(tmp_path):
    path = str(tmp_path / "container.log")
    writer = CriLogWriter(path, 1 << 20)
    checks = 0

    def running() -> bool:
        nonlocal checks
        checks += 1
        if checks <= 3:
            writer.write("stdout", f"line {checks}\n".encode())
        return checks <= 3

    assert followed(path, running) == [("stdout", b"line 1\n"), ("stdout", b"line 2\n"),
                                       ("stdout", b"line 3\n")]


def test_a_log_created_after_the_follow_began_is_read(tmp_path):
    path = str(tmp_path / "container.log")
    checks = 0

    def running() -> bool:
        nonlocal checks
        checks += 1
        if checks == 2:
            CriLogWriter(path, 1 << 20).write("stdout", b"late\n")
        return checks < 2

    assert followed(path, running) == [("stdout", b"late\n")]
