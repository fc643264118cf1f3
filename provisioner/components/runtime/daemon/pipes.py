"""runtime/daemon: an exec'd process's output streamed to the API as it comes.

The core writes an exec's stdout and stderr to files it is given; here those are pipe ends whose
other side the event loop reads, so the exec endpoint can stream without a thread per stream.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from ..container.errors import ContainerError
from .errors import DaemonError


async def run_with_pipes(call) -> AsyncIterator[dict]:
    """Run `call(stdout_file, stderr_file)` in a thread, yielding its output as it comes and its
    return value (the exit code) last."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    pipes = {}
    for stream in ("stdout", "stderr"):
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        pipes[stream] = (read_end, write_end)

    def readable(stream: str, fd: int) -> None:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        if chunk:
            queue.put_nowait((stream, chunk))
        else:
            loop.remove_reader(fd)
            queue.put_nowait((stream, None))

    for stream, (read_end, _) in pipes.items():
        loop.add_reader(read_end, readable, stream, read_end)

    def run() -> int:
        outputs = {stream: os.fdopen(write_end, "wb", buffering=0)
                   for stream, (_, write_end) in pipes.items()}
        try:
            return call(outputs["stdout"], outputs["stderr"])
        finally:
            for output in outputs.values():
                output.close()

    future = loop.run_in_executor(None, run)
    open_streams = 2
    try:
        while open_streams:
            stream, chunk = await queue.get()
            if chunk is None:
                open_streams -= 1
                continue
            yield {"stream": stream, "data": chunk.decode("utf-8", "surrogateescape")}
        try:
            exit_code = await future
        except ContainerError as error:
            raise DaemonError(error.message) from None
        yield {"exit_code": exit_code}
    finally:
        for read_end, _ in pipes.values():
            loop.remove_reader(read_end)
            os.close(read_end)
