"""Kubernetes resource quantities ("100m", "64Mi", "1.5G", "2e3") as numbers, for any component."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

_SUFFIX = {"": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
           "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


@lru_cache(maxsize=4096)  # the same few strings ("100m", "500Mi") come back for every pod
def parse(value: str | int | float) -> Decimal:
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in _SUFFIX:
        raise ValueError(f"{value!r} is not a quantity (e.g. 100m, 64Mi, 2)")
    try:
        return Decimal(match.group(1)) * Decimal(_SUFFIX[match.group(2)])
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a quantity (e.g. 100m, 64Mi, 2)") from None


def milli(value: str | int | float) -> int:
    """A quantity in thousandths, rounded up (CPU in millicores), as Kubernetes' MilliValue does."""
    return int(-(-parse(value) * 1000 // 1))


def whole(value: str | int | float) -> int:
    """A quantity as an integer, rounded up (bytes, counts), as Kubernetes' Value does."""
    return int(-(-parse(value) // 1))
