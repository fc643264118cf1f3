"""ControllerRevisions for DaemonSets and StatefulSets: one per pod template, numbered.

`<owner>-<hash>` holds the template as the strategic-merge patch `kubectl rollout undo` applies
({"spec": {"template": {..., "$patch": "replace"}}}). The current template's revision gets the
highest number (a template that comes back, as after an undo, is renumbered, as upstream does);
revisions past revisionHistoryLimit that no pod uses are deleted, oldest first.
"""

from __future__ import annotations

import copy
from typing import Any

from provisioner.components.api.client import ApiStatusError, Client
from provisioner.components.api.informer import Informer

from . import podutil

Obj = dict[str, Any]
HASH_LABEL = "controller-revision-hash"


def revision_body(owner: Obj, kind: str, h: str, number: int) -> Obj:
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    labels = dict(((owner.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
    labels[HASH_LABEL] = h
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": f"{owner['metadata']['name']}-{h}", "namespace": owner["metadata"]["namespace"],
                         "labels": labels, "ownerReferences": [podutil.owner_ref(owner, "apps/v1", kind)]},
            "data": {"spec": {"template": template}}, "revision": number}


def to_prune(revisions: list[Obj], current: str, in_use: set[str], limit: int) -> list[Obj]:
    old = sorted((r for r in revisions if r["metadata"]["name"] != current
                  and (r["metadata"].get("labels") or {}).get(HASH_LABEL) not in in_use),
                 key=lambda r: int(r.get("revision") or 0))
    return old[:max(0, len(old) - limit)]


async def sync_history(api: Client, revisions: Informer, owner: Obj, kind: str, h: str,
                       in_use: set[str]) -> None:
    ns, name = owner["metadata"]["namespace"], owner["metadata"]["name"]
    mine = [r for r in revisions.by_index("namespace", ns) if podutil.owned_by(r, owner)]
    current = next((r for r in mine if r["metadata"]["name"] == f"{name}-{h}"), None)
    top = max((int(r.get("revision") or 0) for r in mine), default=0)
    try:
        if current is None:
            await api.create("apps", "v1", "controllerrevisions", revision_body(owner, kind, h, top + 1), ns)
        elif int(current.get("revision") or 0) < top:
            await api.replace("apps", "v1", "controllerrevisions", dict(current, revision=top + 1), ns)
    except ApiStatusError as exc:
        if exc.code != 409:
            raise
    limit = int((owner.get("spec") or {}).get("revisionHistoryLimit", 10))
    for r in to_prune(mine, f"{name}-{h}", in_use | {h}, limit):
        try:
            await api.delete("apps", "v1", "controllerrevisions", r["metadata"]["name"], ns)
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
