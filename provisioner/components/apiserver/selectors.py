"""Label and field selectors, parsed as apimachinery's labels/fields packages parse them.

Label: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, comma = AND.
Field: `path=value`, `path==value`, `path!=value` over a fixed set of fields per kind.
"""

from __future__ import annotations

import re
from typing import Callable

from .errors import ApiError

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

Requirement = tuple[str, str, tuple[str, ...]]  # key, operator, values


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if depth != 0:
        raise ApiError.bad_request(f"unable to parse requirement: unbalanced parentheses in {text!r}")
    parts.append(cur)
    return parts


def _check_key(key: str, whole: str) -> None:
    if not _KEY.match(key) or len(key.split("/")[-1]) > 63:
        raise ApiError.bad_request(
            f"unable to parse requirement: values[0][{key}]: Invalid value: {key!r}: name part "
            "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character" if key else f"unable to parse requirement: {whole!r}")


def _check_value(v: str) -> None:
    if len(v) > 63 or not _VALUE.match(v):
        raise ApiError.bad_request(
            f"unable to parse requirement: values[0]: Invalid value: {v!r}: a valid label must be "
            "an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character")


def parse_labels(text: str | None) -> list[Requirement]:
    if not text or not text.strip():
        return []
    reqs: list[Requirement] = []
    for raw in _split_top(text):
        part = raw.strip()
        m = re.match(r"^(\S+?)\s+(in|notin)\s*\((.*)\)$", part)
        if m:
            key, op, vals = m.group(1), m.group(2), tuple(v.strip() for v in m.group(3).split(","))
            vals = tuple(v for v in vals if v != "") if vals != ("",) else ()
            _check_key(key, part)
            for v in vals:
                _check_value(v)
            reqs.append((key, op, vals))
            continue
        m = re.match(r"^([^=!<>\s]+)\s*(==|!=|=|<|>)\s*(\S*)$", part)
        if m:
            key, op, val = m.groups()
            _check_key(key, part)
            if op in ("<", ">"):
                if not re.match(r"^-?\d+$", val):
                    raise ApiError.bad_request(f"unable to parse requirement: for 'Gt', 'Lt' "
                                               f"operators, the value must be an integer: {val!r}")
            else:
                _check_value(val)
            reqs.append((key, {"==": "=", "=": "="}.get(op, op), (val,)))
            continue
        m = re.match(r"^(!?)\s*([^=!<>\s(),]+)$", part)
        if m:
            _check_key(m.group(2), part)
            reqs.append((m.group(2), "!" if m.group(1) else "exists", ()))
            continue
        raise ApiError.bad_request(f"unable to parse requirement: found '{part}', expected: "
                                   "identifier, '=', '==', '!=', 'in', 'notin'")
    return reqs


def match_labels(reqs: list[Requirement], labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    for key, op, vals in reqs:
        has = key in labels
        v = labels.get(key)
        if op == "=" and v != vals[0]:
            return False
        if op == "!=" and has and v == vals[0]:
            return False
        if op == "in" and v not in vals:
            return False
        if op == "notin" and has and v in vals:
            return False
        if op == "exists" and not has:
            return False
        if op == "!" and has:
            return False
        if op in ("<", ">"):
            try:
                n = int(v)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return False
            if (op == ">" and not n > int(vals[0])) or (op == "<" and not n < int(vals[0])):
                return False
    return True


def selector_from_label_selector(sel: dict | None) -> list[Requirement]:
    """A metav1.LabelSelector (matchLabels + matchExpressions) as requirements."""
    sel = sel or {}
    reqs: list[Requirement] = [(k, "=", (v,)) for k, v in (sel.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for e in sel.get("matchExpressions") or []:
        reqs.append((e["key"], ops.get(e["operator"], "in"), tuple(e.get("values") or ())))
    return reqs


def format_label_selector(sel: dict | None) -> str:
    sel = sel or {}
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op = e["operator"]
        if op in ("In", "NotIn"):
            parts.append(f"{e['key']} {op.lower()} ({','.join(e.get('values') or [])})")
        else:
            parts.append(("!" if op == "DoesNotExist" else "") + e["key"])
    return ",".join(parts)


# field selectors -------------------------------------------------------------------------------
COMMON_FIELDS = ("metadata.name", "metadata.namespace")
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
              "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
              "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    "Secret": ("type",),
    "Namespace": ("status.phase",),
    "Node": ("spec.unschedulable",),
    "ReplicaSet": ("status.replicas",),
    "Job": ("status.successful",),
    "CertificateSigningRequest": ("spec.signerName",),
}


def field_value(obj: dict, path: str) -> str:
    if path == "source" and obj.get("kind") == "Event":
        return (obj.get("source") or {}).get("component", "")
    cur: object = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return "" if cur is None else str(cur)


def parse_fields(text: str | None, kind: str) -> list[tuple[str, str, str]]:
    if not text or not text.strip():
        return []
    allowed = COMMON_FIELDS + KIND_FIELDS.get(kind, ())
    out = []
    for part in text.split(","):
        m = re.match(r"^\s*([^=!\s]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not m:
            raise ApiError.bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        path, op, val = m.groups()
        if path not in allowed:
            raise ApiError.bad_request(f'field label not supported: {path}')
        out.append((path, "!=" if op == "!=" else "=", val))
    return out


def match_fields(reqs: list[tuple[str, str, str]], obj: dict) -> bool:
    for path, op, val in reqs:
        got = field_value(obj, path)
        if (op == "=") != (got == val):
            return False
    return True


def predicate(label_text: str | None, field_text: str | None, kind: str) -> Callable[[dict], bool] | None:
    lreq = parse_labels(label_text)
    freq = parse_fields(field_text, kind)
    if not lreq and not freq:
        return None
    return lambda obj: match_labels(lreq, obj.get("metadata", {}).get("labels")) and match_fields(freq, obj)
