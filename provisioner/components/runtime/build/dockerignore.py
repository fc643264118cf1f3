"""runtime/build: `.dockerignore` patterns, as Docker reads them.

One pattern a line, `#` comments, paths relative to the context root (a leading `/` is dropped),
`*` and `?` within one path component, `**` across any number of components, `!` re-includes.
The last matching pattern wins; a pattern matching a directory matches everything below it.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern
    exclude: bool


class DockerIgnore:
    def __init__(self, lines: list[str]):
        self.patterns: list[_Pattern] = []
        for line in lines:
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            exclude = not text.startswith("!")
            if not exclude:
                text = text[1:].strip()
            text = posixpath.normpath(text.lstrip("/")) if text.lstrip("/") else ""
            if text in ("", "."):
                continue
            self.patterns.append(_Pattern(re.compile(_translate(text)), exclude))

    @classmethod
    def from_context(cls, context_dir: str) -> DockerIgnore:
        path = os.path.join(context_dir, ".dockerignore")
        try:
            with open(path, encoding="utf-8") as ignore:
                return cls(ignore.read().splitlines())
        except FileNotFoundError:
            return cls([])

    def excluded(self, rel_path: str) -> bool:
        """Whether the context path (`a/b/c`, relative, `/`-separated) is left out."""
        rel_path = rel_path.strip("/")
        prefixes = _prefixes(rel_path)
        result = False
        for pattern in self.patterns:
            if any(pattern.regex.fullmatch(prefix) for prefix in prefixes):
                result = pattern.exclude
        return result


def _prefixes(rel_path: str) -> list[str]:
    parts = rel_path.split("/")
    return ["/".join(parts[:count]) for count in range(1, len(parts) + 1)]


def _translate(pattern: str) -> str:
    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
            continue
        if pattern.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[index + 1:end]
                if body.startswith("^") or body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                index = end
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out.append(re.escape(pattern[index]))
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)
