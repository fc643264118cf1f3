"""The persistentvolume-binder controller: claims meet volumes (static provisioning).

A Pending PersistentVolumeClaim is bound to the smallest Available PersistentVolume that fits:
the same storageClassName and volumeMode, every access mode asked for, enough capacity, the
claim's selector matching the volume's labels (a claim naming spec.volumeName gets that volume,
a volume whose claimRef names the claim is kept for it). Binding writes the volume's claimRef
and phase Bound first, then the claim's volumeName and phase Bound, as upstream, with the
`pv.kubernetes.io/bind-completed` and `bound-by-controller` annotations. A volume whose claim is
gone becomes Released (reclaimPolicy Retain) or is deleted (Delete).

Not done: dynamic provisioning (no provisioners exist here) and WaitForFirstConsumer classes,
whose claims wait for a node the scheduler does not choose yet.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from provisioner.components.api import quantity
from provisioner.components.api.client import ApiStatusError

from . import podutil
from .base import Controller, split_key

Obj = dict[str, Any]
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"


def _size(value: Any) -> Decimal:
    try:
        return quantity.parse(value) if value is not None else Decimal(0)
    except ValueError:
        return Decimal(0)


def fits(claim: Obj, volume: Obj) -> bool:
    cs, vs = claim.get("spec") or {}, volume.get("spec") or {}
    if (cs.get("storageClassName") or "") != (vs.get("storageClassName") or ""):
        return False
    if (cs.get("volumeMode") or "Filesystem") != (vs.get("volumeMode") or "Filesystem"):
        return False
    if not set(cs.get("accessModes") or []) <= set(vs.get("accessModes") or []):
        return False
    want = _size(((cs.get("resources") or {}).get("requests") or {}).get("storage"))
    if _size((vs.get("capacity") or {}).get("storage")) < want:
        return False
    selector = cs.get("selector")
    return selector is None or podutil.selector_matches(selector, volume["metadata"].get("labels"))


def claimed_for(volume: Obj, claim: Obj) -> bool:
    ref = (volume.get("spec") or {}).get("claimRef") or {}
    return ref.get("name") == claim["metadata"]["name"] and ref.get("namespace") == claim["metadata"]["namespace"] \
        and ref.get("uid") in (None, "", claim["metadata"].get("uid"))


def choose(claim: Obj, volumes: list[Obj]) -> Obj | None:
    """The volume for a claim: the one it names or that names it, else the smallest that fits."""
    named = (claim.get("spec") or {}).get("volumeName")
    for v in volumes:
        if (named and v["metadata"]["name"] == named) or claimed_for(v, claim):
            return v if fits(claim, v) or claimed_for(v, claim) else None
    if named:
        return None
    free = [v for v in volumes if not (v.get("spec") or {}).get("claimRef") and not podutil.is_terminating(v)
            and (v.get("status") or {}).get("phase", "Available") in ("Available", "Pending") and fits(claim, v)]
    return min(free, key=lambda v: (_size(((v.get("spec") or {}).get("capacity") or {}).get("storage")),
                                    v["metadata"]["name"]), default=None)


class PersistentVolumeBinder(Controller):
    name = "persistentvolume-binder"
    requires = (("", "v1", "persistentvolumes"), ("", "v1", "persistentvolumeclaims"))

    def __init__(self, ctx, workers: int = 1) -> None:
        super().__init__(ctx, workers=1)  # one binder: two claims never race for one volume

    def setup(self) -> None:
        self.claims = self.ctx.informer("", "v1", "persistentvolumeclaims")
        self.volumes = self.ctx.informer("", "v1", "persistentvolumes")
        self.claims.add_handler(self.enqueue, lambda _o, n: self.enqueue(n), self._claim_gone)
        self.volumes.add_handler(self._volume, lambda _o, n: self._volume(n))
        self.taken: dict[str, str] = {}  # volume -> claim key, bound by this process (cache may lag)

    def _claim_gone(self, claim: Obj) -> None:
        for v in self.volumes.list():
            if claimed_for(v, claim):
                self.queue.add("pv/" + v["metadata"]["name"])

    def _volume(self, volume: Obj) -> None:
        self.queue.add("pv/" + volume["metadata"]["name"])
        if not (volume.get("spec") or {}).get("claimRef"):  # a new free volume: pending claims may fit
            for c in self.claims.list():
                if (c.get("status") or {}).get("phase", "Pending") == "Pending":
                    self.enqueue(c)

    async def sync(self, key: str) -> None:
        if key.startswith("pv/"):
            await self._sync_volume(key[3:])
            return
        claim = self.claims.get(key)
        if claim is None or podutil.is_terminating(claim) or (claim.get("status") or {}).get("phase") == "Bound":
            return
        volumes = [v for v in self.volumes.list() if self.taken.get(v["metadata"]["name"], key) == key]
        volume = choose(claim, volumes)
        if volume is None:
            return
        ns, name = split_key(key)
        self.taken[volume["metadata"]["name"]] = key
        if not claimed_for(volume, claim) or (volume.get("status") or {}).get("phase") != "Bound":
            body = dict(volume, spec=dict(volume["spec"], claimRef={
                "kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": ns, "name": name,
                "uid": claim["metadata"]["uid"], "resourceVersion": claim["metadata"]["resourceVersion"]}))
            body["metadata"] = dict(volume["metadata"], annotations=dict(
                volume["metadata"].get("annotations") or {}, **{BOUND_BY_CONTROLLER: "yes"}))
            volume = await self.api.replace("", "v1", "persistentvolumes", body)
            await self.api.replace("", "v1", "persistentvolumes",
                                   dict(volume, status=dict(volume.get("status") or {}, phase="Bound")), sub="status")
        annotations = dict(claim["metadata"].get("annotations") or {})
        annotations.update({BIND_COMPLETED: "yes", BOUND_BY_CONTROLLER: "yes"})
        body = dict(claim, spec=dict(claim["spec"], volumeName=volume["metadata"]["name"]))
        body["metadata"] = dict(claim["metadata"], annotations=annotations)
        claim = await self.api.replace("", "v1", "persistentvolumeclaims", body, ns)
        vspec = volume.get("spec") or {}
        status = dict(claim.get("status") or {}, phase="Bound", accessModes=vspec.get("accessModes") or [],
                      capacity=vspec.get("capacity") or {})
        await self.api.replace("", "v1", "persistentvolumeclaims", dict(claim, status=status), ns, sub="status")

    async def _sync_volume(self, name: str) -> None:
        volume = self.volumes.get(name)
        if volume is None:
            self.taken.pop(name, None)
            return
        ref = (volume.get("spec") or {}).get("claimRef")
        phase = (volume.get("status") or {}).get("phase")
        if not ref:
            if phase != "Available":
                await self._phase(volume, "Available")
            return
        claim = self.claims.get(f"{ref.get('namespace')}/{ref.get('name')}")
        if claim is None:
            try:
                claim = await self.api.get("", "v1", "persistentvolumeclaims", ref.get("name", ""), ref.get("namespace"))
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
        if claim is not None and claim["metadata"].get("uid") == ref.get("uid"):
            return  # in use (binding in progress or done)
        if phase != "Bound" or not ref.get("uid"):
            return  # pre-bound to a claim that does not exist yet: wait for it
        self.taken.pop(name, None)
        if (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy") == "Delete":
            try:
                await self.api.delete("", "v1", "persistentvolumes", name)
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
        elif phase != "Released":
            await self._phase(volume, "Released")

    async def _phase(self, volume: Obj, phase: str) -> None:
        try:
            await self.api.replace("", "v1", "persistentvolumes",
                                   dict(volume, status=dict(volume.get("status") or {}, phase=phase)), sub="status")
        except ApiStatusError as exc:
            if exc.code not in (404, 409):
                raise
