"""DELETE's propagation policy: which garbage-collector finalizer an object keeps while it goes.

kube-apiserver turns `propagationPolicy` (or the older `orphanDependents`) of a DELETE into a
finalizer on the object: `foregroundDeletion` keeps the owner, marked for deletion, until the
garbage collector has removed its blocking dependents; `orphan` keeps it until the collector has
removed the owner references from its dependents; Background adds neither, so the owner goes
at once and the collector removes dependents afterwards. An explicit option overrides a
finalizer already on the object, which overrides the resource's default (Background, except
core/v1 ReplicationControllers, which orphan for compatibility with clients older than
server-side garbage collection). The deletion path (deletion.py) applies what this decides.
"""

from __future__ import annotations

from .errors import ApiError

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
POLICIES = ("Foreground", "Background", "Orphan")
# (group, version, plural) of resources whose dependents are orphaned when a DELETE names no
# policy; everything else is deleted in the background.
ORPHAN_BY_DEFAULT = {("", "v1", "replicationcontrollers")}
# Namespaces are finalized by the namespace controller through spec.finalizers, not by the
# garbage collector.
NOT_COLLECTED = {("", "namespaces")}


def validate(options: dict) -> None:
    """Refuse DeleteOptions kube-apiserver refuses, with its words (422 Invalid)."""
    policy = options.get("propagationPolicy")
    causes = []
    if options.get("orphanDependents") is not None and policy is not None:
        causes.append(("propagationPolicy", f'Invalid value: "{policy}": orphanDependents and '
                                            "deletionPropagation cannot be both set"))
    if policy is not None and policy not in POLICIES:
        causes.append(("propagationPolicy", f'Unsupported value: "{policy}": supported values: '
                                            '"Foreground", "Background", "Orphan", "nil"'))
    if causes:
        raise ApiError.invalid("DeleteOptions", "", causes, group="meta.k8s.io")


def _explicit(options: dict) -> str | None:
    """The policy the request asks for, if it asks: Foreground, Background or Orphan."""
    if options.get("orphanDependents") is not None:
        return "Orphan" if options["orphanDependents"] else "Background"
    return options.get("propagationPolicy")


def _policy(key: tuple[str, str, str], finalizers: list[str], options: dict) -> str:
    asked = _explicit(options)
    if asked:
        return asked
    for finalizer in finalizers:  # an earlier DELETE's choice stands
        if finalizer == ORPHAN:
            return "Orphan"
        if finalizer == FOREGROUND:
            return "Foreground"
    return "Orphan" if key in ORPHAN_BY_DEFAULT else "Background"


def finalizers_on_delete(group: str, version: str, plural: str, finalizers: list[str],
                         options: dict) -> list[str] | None:
    """The object's finalizers once this DELETE is applied, or None when they stay as they are."""
    if (group, plural) in NOT_COLLECTED:
        return None
    policy = _policy((group, version, plural), finalizers, options)
    wanted = [f for f in finalizers if f not in (FOREGROUND, ORPHAN)]
    if policy == "Orphan":
        wanted.append(ORPHAN)
    elif policy == "Foreground":
        wanted.append(FOREGROUND)
    return None if set(wanted) == set(finalizers) else wanted
