"""Files for a host as one tar archive, so a phase places a dozen files in one round trip.

pyinfra's `files.put` reads two or three facts per file before it uploads, each a round trip;
for a host's share of certificates that is seconds. `Session.write_files` sends this archive
base64-encoded on the stdin of one `tar -x` instead: no content is ever in a command line (where
`ps` would show it), and tar creates each file with its final mode and owner, so a key is never
readable by anyone else, not even for a moment.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import shlex
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass

# umask 022: directories tar must make on the way (/etc/kubernetes) as mkdir -p would; the
# archive's own entries get exactly their modes (-p), files created with them, not chmod-ed after
EXTRACT = "umask 022 && base64 -d | tar -x -p --same-owner -f - -C /"


@dataclass(frozen=True)
class FileContent:
    path: str        # absolute
    content: bytes
    mode: str        # octal, e.g. "600"


def tar_of(files: Sequence[FileContent], private_dirs: bool = True) -> bytes:
    """root:root entries: each file's directory (0700, also when it exists) unless
    `private_dirs` is False (then tar makes a missing one as mkdir -p would), then the files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for directory in sorted({posixpath.dirname(f.path) for f in files} if private_dirs else ()):
            entry = tarfile.TarInfo(directory.lstrip("/"))
            entry.type, entry.mode = tarfile.DIRTYPE, 0o700
            archive.addfile(entry)
        for f in files:
            if not posixpath.isabs(f.path):
                raise ValueError(f"{f.path}: a placed file's path must be absolute")
            entry = tarfile.TarInfo(f.path.lstrip("/"))
            entry.size, entry.mode = len(f.content), int(f.mode, 8)
            archive.addfile(entry, io.BytesIO(f.content))
    return buffer.getvalue()


def file_probe(paths: Sequence[str]) -> str:
    """A shell command printing `sha256 mode user group path` for each of `paths` that is a
    regular file (what `in_place` compares against)."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    return (f'for f in {quoted}; do [ -f "$f" ] && [ ! -L "$f" ] && '
            f'echo "$(sha256sum < "$f" | cut -d" " -f1) $(stat -c "%a %U %G" "$f") $f"; done; true')


def parse_file_probe(output: str) -> dict[str, tuple[str, int, str, str]]:
    """path -> (sha256, mode, user, group) from `file_probe`'s output."""
    found = {}
    for line in output.splitlines():
        parts = line.split(" ", 4)
        if len(parts) == 5:
            digest, mode, user, group, path = parts
            try:
                found[path] = (digest, int(mode, 8), user, group)
            except ValueError:
                continue
    return found


def in_place(found: dict[str, tuple[str, int, str, str]], path: str, content: bytes, mode: str,
             user: str = "root", group: str = "root") -> bool:
    """Whether `parse_file_probe` found `path` with exactly this content, mode and owner."""
    return found.get(path) == (hashlib.sha256(content).hexdigest(), int(mode, 8), user, group)
