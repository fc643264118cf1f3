"""One API request as the registry sees it (Req), and the JSON encoding every response uses.

Shared by rest.py (which builds a Req per HTTP request) and the registry modules crud.py,
writes.py, patching.py and deletion.py (which act on it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from . import fields, jsonwire
from .registry import Resource


@dataclass
class Req:
    res: Resource
    namespace: str | None
    name: str | None = None
    sub: str | None = None
    query: dict[str, str] = field(default_factory=dict)
    user: str = ""
    user_agent: str = ""
    warnings: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    view: Resource | None = None  # the resource the client addressed, when stored as `res` (conversion.py)
    # informer reads made for this request (Storage.cached_get/cached_list memo): admission
    # plugins that ask the same (LimitRanger three times per pod) share one answer
    reads: dict = field(default_factory=dict)

    @property
    def manager(self) -> str:
        return self.query.get("fieldManager") or fields.default_manager(self.user_agent)

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun") == "All"


def rand_suffix() -> str:
    """generateName's suffix: consonants and digits, as Kubernetes' utilrand.String."""
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))


def without(obj: dict, *keys: str) -> dict:
    return {k: v for k, v in obj.items() if k not in keys}


def dumps(obj: Any) -> bytes:
    return jsonwire.dumps(obj)  # the standard library's compact bytes, mostly written by orjson
