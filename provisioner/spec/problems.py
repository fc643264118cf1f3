"""Problems found in a cluster file and the error that carries them to the CLI.

A problem is one line for the user: the field path (`spec.hosts[1].address`, or for a
host from an inventory `inventory hosts.yaml: hosts[0].address`) and what was expected.
`Origin` turns a path inside one file into that text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from provisioner.errors import InvalidInputError

PathPart = str | int

# Values and keys quoted back to the user are cut here: a file named by mistake (a key, a
# password database) must not be echoed line by line into a terminal or a CI log.
ECHO_LIMIT = 40


def capped(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` as it may be echoed in a problem: at most `limit` characters, then `...`."""
    return text if len(text) <= limit else text[:limit] + "..."


def format_path(parts: Iterable[PathPart]) -> str:
    """`("spec", "hosts", 1, "address")` -> `spec.hosts[1].address` (long keys capped)."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = capped(str(part))
            text += f".{name}" if text else name
    return text


@dataclass(frozen=True)
class Origin:
    """The file a value was read from; names fields as the user should see them.

    The cluster file has no prefix (`spec.ssh.key`); an inventory file named
    `hosts.yaml` in the cluster file prefixes its fields (`inventory hosts.yaml: ssh.key`).
    """

    label: str | None = None

    def field(self, *parts: PathPart) -> str:
        path = format_path(parts)
        if self.label is None:
            return path
        return f"{self.label}: {path}" if path else self.label


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a warning) in a spec, at one field."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


TOKEN = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def reading_order(problem: Problem) -> tuple:
    """Sort key: the cluster file before inventories, then by field path, indexes numerically."""
    label, rest = "", problem.field
    if rest.startswith("inventory "):
        label, _, rest = rest.partition(": ")
    tokens = tuple((0, int(index), "") if index else (1, 0, name)
                   for index, name in TOKEN.findall(rest))
    return (label, tokens)


def in_reading_order(problems: Iterable[Problem]) -> list[Problem]:
    """Problems without repeats, sorted so those about one host or section stand together."""
    return sorted(dict.fromkeys(problems), key=reading_order)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class SpecError(InvalidInputError):
    """The cluster spec is invalid; `problems` lists every error, `warnings` the rest."""

    def __init__(
        self, path: str | Path, problems: Iterable[Problem], warnings: Iterable[Problem] = ()
    ) -> None:
        self.path = Path(path)
        self.problems = list(problems)
        self.warnings = list(warnings)
        lines = "".join(f"\n  {problem}" for problem in self.problems)
        super().__init__(f"{path} has {plural(len(self.problems), 'problem')}:{lines}")
