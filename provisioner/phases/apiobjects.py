"""Phases that write Kubernetes objects: plan from what the cluster holds, apply only the
difference.

A phase gives a function building its objects; `plan_objects` reads each one's current state
through the API (a read, safe in a dry run), says which would be created or updated, and applies
exactly those on a real run. Before the API server exists (a dry run of a new cluster) every
object counts as one to create.
"""

from __future__ import annotations

from collections.abc import Callable

from provisioner.kube.apiclient import ApiClient, ApiError, declared, differs, object_path
from provisioner.phases.context import ClusterContext
from provisioner.phases.kubeconfig import admin_client
from provisioner.workflow import Plan

CLUSTER = "cluster"   # the pseudo-host API changes are reported under


def describe(obj: dict) -> str:
    namespace = obj["metadata"].get("namespace")
    return f"{obj['kind']} {namespace + '/' if namespace else ''}{obj['metadata']['name']}"


def pending(client: ApiClient | None, objects: list[dict]) -> list[tuple[str, dict]]:
    """(verb, object) for each object the cluster does not hold as declared."""
    found = []
    for obj in objects:
        current = None
        if client is not None:
            try:
                current = client.get(object_path(obj))
            except ApiError:
                current = None
        if current is None:
            found.append(("create", obj))
        elif differs(declared(obj), current):
            found.append(("update", obj))
    return found


def plan_objects(ctx: ClusterContext, plan: Plan, build: Callable[[], list[dict]],
                 title: str) -> None:
    try:
        client: ApiClient | None = admin_client(ctx)
        client.request("GET", "/readyz")
    except (ApiError, OSError, FileNotFoundError):
        client = None
    objects = build()
    todo = pending(client, objects)

    def apply() -> dict[str, list[str]]:
        live = admin_client(ctx)
        changes = [f"{outcome} {describe(obj)}" for _, obj in todo
                   if (outcome := live.ensure(obj))]
        return {CLUSTER: changes} if changes else {}

    if todo:
        plan.then(apply, would=[(CLUSTER, f"{verb} {describe(obj)}") for verb, obj in todo],
                  title=title)
