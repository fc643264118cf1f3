"""Kubernetes resource quantities ("100m", "1Gi", "2e3") as exact Decimals, for quota and limits."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

SUFFIXES = {"": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10 ** 3,
            "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18,
            "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
PATTERN = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[a-zA-Z]*)$")


def parse(value: object) -> Decimal | None:
    """The quantity's value, or None when it is not a quantity."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    m = PATTERN.match(str(value).strip())
    if not m:
        return None
    number, suffix = m.groups()
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(number + suffix)
        if suffix not in SUFFIXES:
            return None
        return Decimal(number) * Decimal(SUFFIXES[suffix])
    except InvalidOperation:
        return None


def fmt(value: Decimal, like: str = "") -> str:
    """A Decimal back as a quantity string: whole numbers plain, fractions of a core in milli."""
    if value == value.to_integral_value():
        return str(int(value))
    return f"{int(value * 1000)}m"
