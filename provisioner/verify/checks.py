"""The result record every smoke test produces, and how a list of them is shown."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class CheckResult:
    check: str  # what was checked, e.g. "etcd member healthy"
    target: str  # host name, or "cluster"
    ok: bool
    detail: str

    def line(self) -> str:
        mark = "PASS" if self.ok else "FAIL"
        return f"{mark} {self.check} [{self.target}]: {self.detail}"


def to_json(results: list[CheckResult]) -> str:
    return json.dumps([asdict(r) for r in results], indent=2)
