"""Reading one YAML input file (cluster or inventory) into a mapping, or saying why not.

Syntax errors name the file and line (`cluster.yaml:12: could not parse YAML: ...`);
a key written twice in one mapping is a syntax error too, since YAML would silently keep
only the last value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from provisioner.spec.problems import Problem, capped
from provisioner.spec.validator import describe


class StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses duplicate keys in a mapping."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: set = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, str | int | float | bool) and key in seen:
                    raise ConstructorError("while constructing a mapping", node.start_mark,
                                           f'found duplicate key "{key}"', key_node.start_mark)
                if isinstance(key, str | int | float | bool):
                    seen.add(key)
        return super().construct_mapping(node, deep=deep)


QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def parse_error(error: yaml.YAMLError, display: str, text: str, echo: bool = True) -> Problem:
    """A YAML error as `file:line: could not parse YAML: what`.

    The line is where the parser noticed the problem, unless that is past the last line
    (an unclosed construct); then it is where the construct started. Quoted bits of the file
    in `what` are capped, or left out entirely when `echo` is false (a file the user may have
    named by mistake).
    """
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        last_line = len(text.splitlines()) - 1
        if mark is not None and mark.line > last_line and error.context_mark is not None:
            mark = error.context_mark
        what = error.problem or error.context or "invalid YAML"
        if error.context and error.problem:
            what = f"{error.problem} ({error.context})"
        what = QUOTED.sub(lambda quoted: quote_back(quoted.group(0), echo), what)
        where = f"{display}:{mark.line + 1}" if mark is not None else display
        return Problem(where, f"could not parse YAML: {what}")
    first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
    return Problem(display, f"could not parse YAML: {first_line}")


def quote_back(quoted: str, echo: bool) -> str:
    """A quoted piece of a YAML error as a problem may show it.

    PyYAML quotes both its own tokens (`':'`, `'<block end>'`) and text of the file (a key,
    a tag); without `echo` only the short ones and token names are kept.
    """
    mark, inner = quoted[0], quoted[1:-1]
    if echo:
        return f"{mark}{capped(inner)}{mark}"
    if len(inner) <= 3 or (inner.startswith("<") and inner.endswith(">")):
        return quoted
    return f"{mark}...{mark}"


def read_mapping(path: Path, display: str, expected: str, echo: bool = True
                 ) -> tuple[dict | None, list[Problem]]:
    """The top-level mapping of the YAML file at `path`, or the problems that prevent it.

    `display` names the file in problems; `expected` says what the top level should hold;
    `echo=False` keeps every piece of the file's text out of the problems.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(display, "file not found")]
    except IsADirectoryError:
        return None, [Problem(display, "is a directory, not a file")]
    except UnicodeDecodeError:
        return None, [Problem(display, "is not UTF-8 text")]
    except OSError as error:
        return None, [Problem(display, f"could not be read: {error.strerror or error}")]
    try:
        document: Any = yaml.load(text, Loader=StrictLoader)
    except yaml.YAMLError as error:
        return None, [parse_error(error, display, text, echo)]
    if document is None:
        return None, [Problem(display, f"is empty; expected a mapping with {expected}")]
    if not isinstance(document, dict):
        return None, [Problem(display, f"top level must be a mapping with {expected} "
                                       f"(found {describe(document)})")]
    return document, []
