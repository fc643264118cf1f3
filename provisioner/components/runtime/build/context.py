"""runtime/build: the build context for COPY and ADD.

Finds sources (with wildcards) in the context minus `.dockerignore`, hashes them for the build
cache (paths, types, modes, contents, link targets; not mtimes), and copies them into a staging
directory that becomes the step's layer. ADD unpacks local tar archives instead of copying them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass

from .dockerignore import DockerIgnore

_TAR_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ")


class ContextError(Exception):
    """A COPY/ADD source problem; the builder adds the Dockerfile line."""


@dataclass(frozen=True)
class Source:
    path: str          # absolute path in the context
    rel: str           # path relative to the context root


class BuildContext:
    def __init__(self, root: str):
        self.root = os.path.realpath(root)
        self.ignore = DockerIgnore.from_context(self.root)

    def find(self, pattern: str) -> list[Source]:
        """Sources matching `pattern` (relative to the context; `*?[` wildcards allowed)."""
        clean = os.path.normpath(pattern.lstrip("/")) if pattern.strip("/") else "."
        if clean == ".." or clean.startswith("../"):
            raise ContextError(f"source {pattern!r} is outside the build context")
        if any(char in clean for char in "*?["):
            parent = os.path.dirname(clean)
            directory = os.path.join(self.root, parent)
            names = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
            matches = [os.path.join(parent, name) for name in names
                       if fnmatch.fnmatchcase(name, os.path.basename(clean))]
        else:
            matches = [clean] if os.path.lexists(os.path.join(self.root, clean)) else []
        found = [Source(os.path.join(self.root, rel), "" if rel == "." else rel)
                 for rel in matches if rel == "." or not self.ignore.excluded(rel)]
        if not found:
            hint = " (it is excluded by .dockerignore)" if matches else ""
            # Not the context's path: in the daemon that is a temporary directory of its own.
            raise ContextError(f"source {pattern!r} not found in the build context{hint}")
        for source in found:
            # A symlink source is copied as the link; only a path through a symlinked
            # directory actually follows a link, and must stay inside the context.
            real = os.path.join(os.path.realpath(os.path.dirname(source.path)),
                                os.path.basename(source.path)) if source.rel else self.root
            if real != self.root and not real.startswith(self.root + os.sep):
                raise ContextError(f"source {pattern!r} resolves outside the build context")
        return found

    def walk(self, source: Source) -> list[tuple[str, str]]:
        """(absolute path, path relative to the source) of the source and what lies below it,
        sorted, minus ignored entries."""
        entries = [(source.path, "")]
        if os.path.isdir(source.path) and not os.path.islink(source.path):
            for current, dirs, files in os.walk(source.path):
                dirs.sort()
                for name in sorted(dirs + files):
                    path = os.path.join(current, name)
                    rel_context = os.path.relpath(path, self.root)
                    if self.ignore.excluded(rel_context):
                        continue
                    entries.append((path, os.path.relpath(path, source.path)))
        return entries

    def digest(self, sources: list[Source]) -> str:
        """The cache input of a COPY/ADD: every file's path, type, mode and content."""
        state = hashlib.sha256()
        for source in sources:
            for path, rel in self.walk(source):
                info = os.lstat(path)
                state.update(f"{source.rel}\0{rel}\0{info.st_mode:o}\0".encode())
                if stat.S_ISLNK(info.st_mode):
                    state.update(os.readlink(path).encode())
                elif stat.S_ISREG(info.st_mode):
                    with open(path, "rb") as content:
                        for chunk in iter(lambda: content.read(1 << 20), b""):
                            state.update(chunk)
                state.update(b"\0")
        return "sha256:" + state.hexdigest()


def copy_into(context: BuildContext, source: Source, target: str,
              owner: tuple[int, int], chmod: int | None) -> None:
    """Copy one source to `target` (a directory's contents go into `target`)."""
    for path, rel in context.walk(source):
        destination = os.path.join(target, rel) if rel else target
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode):
            os.makedirs(destination, exist_ok=True)
        elif stat.S_ISLNK(info.st_mode):
            _replace(destination)
            os.symlink(os.readlink(path), destination)
        elif stat.S_ISREG(info.st_mode):
            _replace(destination)
            shutil.copyfile(path, destination, follow_symlinks=False)
        else:
            continue  # sockets, fifos and devices in a context are not copied
        os.chown(destination, *owner, follow_symlinks=False)
        if not stat.S_ISLNK(info.st_mode):
            mode = chmod if chmod is not None else stat.S_IMODE(info.st_mode)
            os.chmod(destination, mode)
            os.utime(destination, (info.st_mtime, info.st_mtime))


def _replace(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def is_local_archive(path: str) -> bool:
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as probe:
        head = probe.read(6)
    return head.startswith(_TAR_MAGIC) or tarfile.is_tarfile(path)


def extract_archive(path: str, target: str, label: str) -> None:
    """ADD's tar auto-extraction; absolute names, `..` and links leaving `target` are refused."""
    os.makedirs(target, exist_ok=True)
    try:
        with tarfile.open(path, "r:*") as archive:
            archive.extractall(target, filter="tar")
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ContextError(f"{label}: cannot extract archive: {error}") from error
