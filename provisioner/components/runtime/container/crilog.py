"""Container output as CRI log lines (`<RFC3339Nano> stdout|stderr F|P <text>`), rotated by size.

Written by the shim; the daemon's `logs` reads the file (and `<file>.1`, the one rotated file).
A line longer than MAX_LINE is split into P (partial) records ending with an F record.
"""

import os
import time

MAX_LINE = 16 * 1024


def rfc3339_nano(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


class CriLogWriter:
    def __init__(self, path: str, max_bytes: int):
        self.path = path
        self.max_bytes = max_bytes
        self.pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        self.created = not os.path.exists(path)
        self._open()

    def _open(self) -> None:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size

    def write(self, stream: str, data: bytes) -> None:
        buffer = self.pending[stream] + data
        stamp = rfc3339_nano().encode()
        tag = stream.encode()
        records = []
        while True:
            newline = buffer.find(b"\n")
            if newline < 0:
                break
            line, buffer = buffer[:newline], buffer[newline + 1:]
            while len(line) > MAX_LINE:
                records.append(b"%s %s P %s\n" % (stamp, tag, line[:MAX_LINE]))
                line = line[MAX_LINE:]
            records.append(b"%s %s F %s\n" % (stamp, tag, line))
        while len(buffer) > MAX_LINE:
            records.append(b"%s %s P %s\n" % (stamp, tag, buffer[:MAX_LINE]))
            buffer = buffer[MAX_LINE:]
        self.pending[stream] = buffer
        if records:
            self._emit(records)

    def flush_partial(self) -> None:
        """At end of output: a last line without newline is still a whole line."""
        for stream, rest in self.pending.items():
            if rest:
                self._emit([b"%s %s F %s\n" % (rfc3339_nano().encode(), stream.encode(), rest)])
                self.pending[stream] = b""

    def _emit(self, records: list[bytes]) -> None:
        """Write whole records, rotating before one would take the file past max_bytes."""
        batch: list[bytes] = []
        batch_size = 0
        for record in records:
            if self.max_bytes and self.size + batch_size + len(record) > self.max_bytes \
                    and self.size + batch_size > 0:
                self._write_all(b"".join(batch))
                batch, batch_size = [], 0
                self._rotate()
            batch.append(record)
            batch_size += len(record)
        self._write_all(b"".join(batch))

    def _write_all(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(chunk)

    def _rotate(self) -> None:
        os.close(self.fd)
        os.replace(self.path, self.path + ".1")
        self._open()

    def close(self) -> None:
        self.flush_partial()
        os.close(self.fd)

    def discard(self) -> None:
        """The container never ran: close, and remove the file if this writer created it."""
        os.close(self.fd)
        if self.created:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
