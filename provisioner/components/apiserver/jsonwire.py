"""The API server's compact JSON encoding: the bytes of `json.dumps(obj, separators=(",", ":"))`,
produced by orjson where orjson's bytes are the same, and by the standard library otherwise.

Every response body, stored value and watch event goes through here (apirequest.dumps,
storage.py), so the encoder is on every request's path; orjson is several times faster. The wire
bytes must not change (clients and tests compare them), and the two encoders differ only where:
- a string holds a character outside printable ASCII (the standard library escapes it as
  \\uXXXX, orjson writes UTF-8): any byte >= 0x7f in orjson's output;
- a float is below 1e-4 in magnitude (Python's repr switches to an exponent there, `1e-05`;
  orjson writes `0.00001` or `1e-5`): a number token starting `0.0000` or holding `e-`;
- a float is NaN or infinite (`NaN`/`Infinity` against orjson's `null`): a `null` token;
- orjson refuses the value (integers beyond 64 bits, non-string keys, lone surrogates,
  types it does not know): the standard library then encodes it or raises as it always did.
Each is looked for in orjson's output with substring searches; a hit re-encodes with the
standard library, so a false alarm (such text inside a string) costs time, never different bytes.
Objects this server builds hold only JSON types; datetimes and dataclasses are passed to the
standard library (which refuses them, as before) rather than encoded by orjson. (orjson would
also encode a uuid.UUID or a plain Enum member where the standard library raises; neither is
ever put in an object here: uids are strings.)
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_TOKEN_START = frozenset(b":,[")  # what precedes a value in compact JSON
_NUMBER_PART = frozenset(b"0.")  # after _ONE_DIGIT
_ONE_DIGIT = bytes.maketrans(b"123456789", b"000000000")


def stdlib_dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _may_differ(out: bytes) -> bool:
    """Whether orjson's `out` may hold what the standard library spells differently. Substring
    searches (a regular expression over every response would cost more than the encoding)."""
    if not out.isascii() or b"\x7f" in out or b"0.0000" in out or out.startswith((b"null", b"-0.0000")):
        return True
    if b"null" in out and (b":null" in out or b",null" in out or b"[null" in out):
        return True
    if b"e-" not in out:  # no negative exponent anywhere: the usual case, one scan
        return False
    digits = out.translate(_ONE_DIGIT)  # every digit a 0: "<digit>e-" is one search
    at = digits.find(b"0e-")
    while at != -1:  # a number with a negative exponent: digits back to a token start
        i = at
        while i >= 0 and digits[i] in _NUMBER_PART:
            i -= 1
        if i < 0 or digits[i] in _TOKEN_START or (digits[i] == 0x2D and (i == 0 or digits[i - 1] in _TOKEN_START)):
            return True
        at = digits.find(b"0e-", at + 3)
    return False


def dumps(obj: Any) -> bytes:
    """Compact JSON, byte for byte what stdlib_dumps gives."""
    try:
        out = orjson.dumps(obj, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: values only the standard library handles
        return stdlib_dumps(obj)
    return stdlib_dumps(obj) if _may_differ(out) else out


# orjson reads an integer beyond 64 bits as a float; json.loads keeps it exact
_LONG_NUMBER = b"0" * 19


def loads(data: bytes) -> Any:
    """What json.loads gives, read by orjson where that is the same. The standard library takes
    over for what orjson reads differently or refuses (19 digits in a row, which may be an
    integer beyond 64 bits; NaN/Infinity, lone surrogates, a byte-order mark), so errors are
    also reported in its words."""
    if _LONG_NUMBER not in data.translate(_ONE_DIGIT):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)
