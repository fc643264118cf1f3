"""runtime: the build context the CLI sends to the daemon: a tar of the directory minus what
`.dockerignore` excludes. The patterns are read by build/dockerignore.py, the one matcher the
builder also uses, so the CLI never sends what COPY would refuse and vice versa. The Dockerfile
and the `.dockerignore` itself are always sent, as Docker does.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
import tempfile
from collections.abc import Iterator

from .build.dockerignore import DockerIgnore


def _walk_kept(context_dir: str, ignore: DockerIgnore, always: set[str]) -> Iterator[str]:
    """Context-relative paths to send, parents before children, sorted."""
    # Without `!` patterns nothing below an excluded directory can come back: skip its walk.
    may_reinclude = any(not pattern.exclude for pattern in ignore.patterns)
    for current, dirs, files in os.walk(context_dir):
        dirs.sort()
        relative_dir = os.path.relpath(current, context_dir)
        for name in sorted(files):
            relative = os.path.normpath(os.path.join(relative_dir, name))
            if relative in always or not ignore.excluded(relative):
                yield relative
        for name in list(dirs):
            relative = os.path.normpath(os.path.join(relative_dir, name))
            excluded = ignore.excluded(relative)
            if os.path.islink(os.path.join(current, name)):
                dirs.remove(name)           # a link to a directory is sent as the link
                if not excluded:
                    yield relative
                continue
            if excluded and not may_reinclude:
                dirs.remove(name)
            elif not excluded:
                yield relative


@contextlib.contextmanager
def context_tar(context_dir: str, dockerfile: str = "Dockerfile") -> Iterator:
    """A temporary file holding the context tar, positioned at its start."""
    ignore = DockerIgnore.from_context(context_dir)
    always = {os.path.normpath(dockerfile), ".dockerignore"}
    with tempfile.TemporaryFile() as spool:
        with tarfile.open(fileobj=spool, mode="w") as archive:
            for relative in _walk_kept(context_dir, ignore, always):
                archive.add(os.path.join(context_dir, relative), arcname=relative,
                            recursive=False)
        spool.seek(0)
        yield spool
