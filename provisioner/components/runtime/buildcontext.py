"""runtime: the build context the CLI sends to the daemon: a tar of the directory, minus what
`.dockerignore` excludes (Docker's rules: `#` comments, `*` `?` `**` globs, `!` re-includes, the
last matching line wins, an excluded directory takes its contents along). The Dockerfile and the
`.dockerignore` itself are always sent, as Docker does.
"""

from __future__ import annotations

import contextlib
import os
import re
import tarfile
import tempfile
from collections.abc import Iterator


def _pattern_regex(pattern: str) -> re.Pattern:
    parts = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            parts.append(".*")
            index += 2
            if pattern.startswith("/", index):
                parts[-1] = "(?:.*/)?"
                index += 1
            continue
        parts.append({"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char)))
        index += 1
    return re.compile("^" + "".join(parts) + "(?:/.*)?$")


def read_ignore_rules(context_dir: str) -> list[tuple[bool, re.Pattern]]:
    """(excludes, regex) per rule, in file order."""
    path = os.path.join(context_dir, ".dockerignore")
    rules = []
    try:
        with open(path) as source:
            lines = source.read().splitlines()
    except FileNotFoundError:
        return rules
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        include = text.startswith("!")
        text = os.path.normpath(text.lstrip("!").strip()).lstrip("/")
        if text in (".", ""):
            continue
        rules.append((not include, _pattern_regex(text)))
    return rules


def is_ignored(relative_path: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    ignored = False
    for excludes, regex in rules:
        if regex.match(relative_path):
            ignored = excludes
    return ignored


@contextlib.contextmanager
def context_tar(context_dir: str, dockerfile: str = "Dockerfile") -> Iterator:
    """A temporary file holding the context tar, positioned at its start."""
    rules = read_ignore_rules(context_dir)
    always = {os.path.normpath(dockerfile), ".dockerignore"}
    with tempfile.TemporaryFile() as spool:
        with tarfile.open(fileobj=spool, mode="w") as archive:
            for current, dirs, files in os.walk(context_dir):
                dirs.sort()
                relative_dir = os.path.relpath(current, context_dir)
                for name in sorted(files) + [d for d in dirs if os.path.islink(
                        os.path.join(current, d))]:
                    relative = os.path.normpath(os.path.join(relative_dir, name))
                    if relative not in always and is_ignored(relative, rules):
                        continue
                    archive.add(os.path.join(current, name), arcname=relative, recursive=False)
                for name in list(dirs):
                    relative = os.path.normpath(os.path.join(relative_dir, name))
                    if os.path.islink(os.path.join(current, name)):
                        dirs.remove(name)
                        continue
                    # A directory is kept when a later `!` rule may re-include something in it.
                    if is_ignored(relative, rules) and not any(
                            not excludes for excludes, _ in rules):
                        dirs.remove(name)
                        continue
                    if not is_ignored(relative, rules):
                        archive.add(os.path.join(current, name), arcname=relative,
                                    recursive=False)
        spool.seek(0)
        yield spool
