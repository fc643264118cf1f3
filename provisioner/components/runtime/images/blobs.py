"""runtime/images: content-addressed blobs under `blobs/sha256/<hex>`, verified on every write.

Writers stream into a temporary file beside the blob directory and rename it into place only
once the sha256 matches, so a crash or a corrupted download never leaves a partial blob.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from typing import BinaryIO

from .errors import BlobCorrupted, ImageError
from .oci import digest_hex

CHUNK = 1024 * 1024


class BlobStore:
    def __init__(self, root: str):
        self.root = root                       # the image layout directory
        self.dir = os.path.join(root, "blobs", "sha256")
        self.tmp_dir = os.path.join(root, "tmp")
        os.makedirs(self.dir, exist_ok=True)
        os.makedirs(self.tmp_dir, exist_ok=True)

    def path(self, digest: str) -> str:
        return os.path.join(self.dir, digest_hex(digest))

    def exists(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        return os.path.getsize(self.path(digest))

    def read(self, digest: str) -> bytes:
        try:
            with open(self.path(digest), "rb") as blob:
                return blob.read()
        except FileNotFoundError:
            raise ImageError(f"blob {digest} is missing from the image store {self.root}") from None

    def put_bytes(self, data: bytes, expected: str | None = None) -> str:
        return self.put_chunks([data], expected)

    def put_file(self, source: BinaryIO, expected: str | None = None) -> str:
        return self.put_chunks(iter(lambda: source.read(CHUNK), b""), expected)

    def put_chunks(self, chunks: Iterable[bytes], expected: str | None = None,
                   what: str = "blob") -> str:
        """Store the stream; raise BlobCorrupted (leaving nothing) if `expected` does not match."""
        digest_state = hashlib.sha256()
        fd, tmp_path = tempfile.mkstemp(dir=self.tmp_dir, prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    digest_state.update(chunk)
                    out.write(chunk)
            digest = "sha256:" + digest_state.hexdigest()
            if expected is not None and digest != expected:
                raise BlobCorrupted(
                    f"{what} content does not match its digest: expected {expected}, got {digest}")
            os.chmod(tmp_path, 0o644)
            os.replace(tmp_path, self.path(digest))
            return digest
        except BaseException:
            with _suppress_missing():
                os.unlink(tmp_path)
            raise

    def put_path(self, path: str) -> str:
        """Store a file by copying it (the source is left alone)."""
        with open(path, "rb") as source:
            return self.put_file(source)

    def verify(self, digest: str) -> None:
        """Re-hash a stored blob; a mismatch raises BlobCorrupted naming the blob path."""
        state = hashlib.sha256()
        try:
            with open(self.path(digest), "rb") as blob:
                for chunk in iter(lambda: blob.read(CHUNK), b""):
                    state.update(chunk)
        except FileNotFoundError:
            raise ImageError(f"blob {digest} is missing from the image store {self.root}") from None
        if "sha256:" + state.hexdigest() != digest:
            raise BlobCorrupted(
                f"blob {self.path(digest)} is corrupted (its sha256 is {state.hexdigest()}); "
                "remove the image and pull or load it again")

    def remove(self, digest: str) -> None:
        with _suppress_missing():
            os.unlink(self.path(digest))

    def all(self) -> list[str]:
        return ["sha256:" + name for name in os.listdir(self.dir)]

    def copy_to(self, digest: str, destination: BinaryIO) -> None:
        with open(self.path(digest), "rb") as blob:
            shutil.copyfileobj(blob, destination, CHUNK)


class _suppress_missing:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        return kind is not None and issubclass(kind, FileNotFoundError)


class BlobWriter:
    """Incremental writes of one blob (e.g. from a network stream); `commit` verifies and
    renames, `discard` (or leaving the `with` block on an error) removes the temporary file."""

    def __init__(self, blobs: BlobStore, expected: str, what: str):
        self._blobs, self.expected, self._what = blobs, expected, what
        self._state = hashlib.sha256()
        fd, self._tmp_path = tempfile.mkstemp(dir=blobs.tmp_dir, prefix="blob-")
        self._file = os.fdopen(fd, "wb")
        self.written = 0

    def write(self, chunk: bytes) -> None:
        self._state.update(chunk)
        self._file.write(chunk)
        self.written += len(chunk)

    def commit(self) -> str:
        self._file.close()
        digest = "sha256:" + self._state.hexdigest()
        if digest != self.expected:
            self.discard()
            raise BlobCorrupted(f"{self._what} content does not match its digest: expected "
                                f"{self.expected}, got {digest}")
        os.chmod(self._tmp_path, 0o644)
        os.replace(self._tmp_path, self._blobs.path(digest))
        return digest

    def discard(self) -> None:
        self._file.close()
        with _suppress_missing():
            os.unlink(self._tmp_path)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self.discard()
