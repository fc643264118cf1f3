"""Small helpers over Kubernetes objects as plain dicts, shared by every component."""

from __future__ import annotations

import datetime as dt
from typing import Any


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(obj: dict) -> dict:
    return obj.setdefault("metadata", {})


def name(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name", "")


def namespace(obj: dict) -> str | None:
    return (obj.get("metadata") or {}).get("namespace")


def labels(obj: dict) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def owner_reference(owner: dict, controller: bool = True) -> dict:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": name(owner),
            "uid": meta(owner)["uid"], "controller": controller, "blockOwnerDeletion": True}


def get_condition(obj: dict, ctype: str) -> dict | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def set_condition(obj: dict, ctype: str, status: str, reason: str = "", message: str = "") -> bool:
    """Set a condition; lastTransitionTime moves only when the status changes. True if changed."""
    conds = obj.setdefault("status", {}).setdefault("conditions", [])
    for c in conds:
        if c.get("type") == ctype:
            changed = (c.get("status"), c.get("reason"), c.get("message")) != (status, reason, message)
            if c.get("status") != status:
                c["lastTransitionTime"] = now()
            c.update(status=status, reason=reason, message=message)
            return changed
    conds.append({"type": ctype, "status": status, "reason": reason, "message": message,
                  "lastTransitionTime": now()})
    return True


def path(group: str, version: str, plural: str, ns: str | None = None, name: str | None = None,
         sub: str | None = None) -> str:
    """The REST path of a collection or object."""
    out = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if ns:
        out += f"/namespaces/{ns}"
    out += f"/{plural}"
    if name:
        out += f"/{name}"
    if sub:
        out += f"/{sub}"
    return out


def dig(obj: Any, dotted: str, default: Any = None) -> Any:
    cur = obj
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return default if cur is None else cur
