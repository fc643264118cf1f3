"""runtime/build: the Dockerfile parser, with line numbers for every error.

Handles line continuations (the escape character at the end of a line), comments (also inside
continued instructions), parser directives at the top (`# escape=` is honoured, `# syntax=` and
others are ignored), JSON ("exec") and shell forms, `--flag=value` options, and variable
substitution (`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}`) with Docker's quoting rules.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

KNOWN = {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY",
         "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL",
         "HEALTHCHECK", "SHELL"}
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_FLAG = re.compile(r"^--([a-z-]+)(?:=(\S*))?$")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class DockerfileError(Exception):
    """A problem in the Dockerfile, reported as `<file>:<line>: <what>`."""

    def __init__(self, path: str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.reason = path, line, message


@dataclass
class Instruction:
    keyword: str                    # upper case: "RUN"
    arguments: str                  # the text after the keyword and flags, continuations joined
    line: int                       # where the instruction starts (1-based)
    flags: dict[str, str] = field(default_factory=dict)
    exec_form: list[str] | None = None   # the JSON form, when the arguments are a JSON array

    @property
    def text(self) -> str:
        flags = "".join(f"--{name}={value} " for name, value in sorted(self.flags.items()))
        return f"{self.keyword} {flags}{self.arguments}".strip()


@dataclass
class Dockerfile:
    path: str
    instructions: list[Instruction]
    escape: str = "\\"

    def error(self, instruction: Instruction, message: str) -> DockerfileError:
        return DockerfileError(self.path, instruction.line, message)


def parse(text: str, path: str = "Dockerfile") -> Dockerfile:
    lines = text.splitlines()
    escape = "\\"
    start = 0
    # Parser directives: only at the very top, before any comment, blank line or instruction.
    while start < len(lines):
        match = _DIRECTIVE.match(lines[start].strip())
        if not match:
            break
        if match.group(1).lower() == "escape":
            if match.group(2) not in ("\\", "`"):
                raise DockerfileError(path, start + 1,
                                      f"invalid escape character {match.group(2)!r}: use \\ or `")
            escape = match.group(2)
        start += 1
    instructions: list[Instruction] = []
    index = start
    while index < len(lines):
        first_line = index + 1
        stripped = lines[index].strip()
        index += 1
        if not stripped or stripped.startswith("#"):
            continue
        logical = stripped
        while logical.endswith(escape) and not _is_json_array(logical):
            logical = logical[:-1]
            while index < len(lines) and (not lines[index].strip()
                                          or lines[index].strip().startswith("#")):
                index += 1
            if index >= len(lines):
                break
            logical += lines[index].strip() if logical.endswith(" ") else " " + \
                lines[index].strip()
            index += 1
        instructions.append(_instruction(logical, first_line, path))
    if not instructions:
        raise DockerfileError(path, 1, "the Dockerfile has no instructions")
    return Dockerfile(path, instructions, escape)


def _is_json_array(text: str) -> bool:
    rest = text.split(None, 1)[1] if len(text.split(None, 1)) > 1 else ""
    return rest.startswith("[") and rest.endswith("]")


def _instruction(logical: str, line: int, path: str) -> Instruction:
    parts = logical.split(None, 1)
    keyword = parts[0].upper()
    if keyword not in KNOWN:
        raise DockerfileError(path, line, f'unknown instruction "{parts[0]}"')
    rest = parts[1].strip() if len(parts) > 1 else ""
    flags: dict[str, str] = {}
    if keyword in ("FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"):
        while rest.startswith("--"):
            word, _, remainder = rest.partition(" ")
            match = _FLAG.match(word)
            if not match:
                raise DockerfileError(path, line, f"malformed flag {word!r} on {keyword}")
            flags[match.group(1)] = match.group(2) or ""
            rest = remainder.strip()
    exec_form = None
    if rest.startswith("["):
        try:
            loaded = json.loads(rest)
        except json.JSONDecodeError:
            loaded = None
        if isinstance(loaded, list) and all(isinstance(item, str) for item in loaded):
            exec_form = loaded
    if not rest and keyword not in ("CMD", "ENTRYPOINT"):
        raise DockerfileError(path, line, f"{keyword} needs arguments")
    return Instruction(keyword, rest, line, flags, exec_form)


# ---------------------------------------------------------------------------------- words


def split_words(text: str, env: dict[str, str], escape: str = "\\",
                expand: bool = True) -> list[str]:
    """Shell-like words of `text`: quotes removed, `$VAR` expanded (not inside '...')."""
    words: list[str] = []
    current: list[str] = []
    in_word = False
    index = 0
    quote = None
    while index < len(text):
        char = text[index]
        if quote is None and char.isspace():
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
            index += 1
            continue
        in_word = True
        if char == escape and quote != "'" and index + 1 < len(text):
            following = text[index + 1]
            if quote == '"' and following not in ('"', escape, "$"):
                current.append(char)
            current.append(following)
            index += 2
            continue
        if char in "'\"" and quote in (None, char):
            quote = None if quote else char
            index += 1
            continue
        if char == "$" and expand and quote != "'":
            value, index = _expand_variable(text, index, env)
            current.append(value)
            continue
        current.append(char)
        index += 1
    if quote is not None:
        raise ValueError(f"unterminated {quote} quote in {text!r}")
    if in_word:
        words.append("".join(current))
    return words


def expand(text: str, env: dict[str, str], escape: str = "\\") -> str:
    """Substitute variables in one value (used for each element of JSON forms)."""
    out, index = [], 0
    while index < len(text):
        char = text[index]
        if char == escape and index + 1 < len(text) and text[index + 1] == "$":
            out.append("$")
            index += 2
        elif char == "$":
            value, index = _expand_variable(text, index, env)
            out.append(value)
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _expand_variable(text: str, index: int, env: dict[str, str]) -> tuple[str, int]:
    """Expand the `$...` at `index`; returns the value and the index after it."""
    if index + 1 < len(text) and text[index + 1] == "{":
        end = text.find("}", index + 2)
        if end == -1:
            raise ValueError(f"missing '}}' in {text!r}")
        body = text[index + 2:end]
        match = _VARIABLE.match(body)
        if not match:
            raise ValueError(f"bad substitution ${{{body}}}")
        name, modifier = match.group(0), body[match.end():]
        value = env.get(name)
        if modifier.startswith(":-"):
            value = value if value else expand(modifier[2:], env)
        elif modifier.startswith("-"):
            value = value if value is not None else expand(modifier[1:], env)
        elif modifier.startswith(":+"):
            value = expand(modifier[2:], env) if value else ""
        elif modifier.startswith("+"):
            value = expand(modifier[1:], env) if value is not None else ""
        elif modifier:
            raise ValueError(f"unsupported substitution ${{{body}}}")
        return value or "", end + 1
    match = _VARIABLE.match(text, index + 1)
    if not match:
        return "$", index + 1
    return env.get(match.group(0), ""), match.end()


def key_values(instruction: Instruction, env: dict[str, str], escape: str,
               legacy_allowed: bool) -> list[tuple[str, str]]:
    """`K=V K2="v 2"` pairs of ENV/LABEL/ARG; `ENV K some value` in the legacy form."""
    words = split_words(instruction.arguments, env, escape)
    if legacy_allowed and words and "=" not in words[0]:
        key, _, value = instruction.arguments.partition(" ")
        if not value.strip():
            raise ValueError(f"{instruction.keyword} {key} needs a value")
        return [(key, " ".join(split_words(value.strip(), env, escape)))]
    pairs = []
    for word in words:
        key, equals, value = word.partition("=")
        if not equals or not key:
            raise ValueError(f"{instruction.keyword} expects KEY=VALUE pairs, got {word!r}")
        pairs.append((key, value))
    return pairs
