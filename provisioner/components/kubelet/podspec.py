"""kubelet: reading a pod's spec: QoS class, environment, $(VAR) expansion, limits, users.

Pure functions over the pod dict plus a `lookup` for configMaps and secrets, so the rules are
tested without a cluster. A missing configMap or key raises ConfigError with kubelet's message,
which becomes the container's CreateContainerConfigError.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable

from ..api.quantity import milli
from ..api.quantity import parse as parse_quantity

Lookup = Callable[[str, str], Awaitable[dict | None]]   # (kind, name) -> object or None


class ContainerConfigError(Exception):
    """The container cannot be created from its spec as things are (CreateContainerConfigError)."""


def qos_class(pod: dict) -> str:
    containers = [*pod["spec"].get("initContainers", []), *pod["spec"].get("containers", [])]
    requests_set = limits_set = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        for name in ("cpu", "memory"):
            request = requests.get(name, limits.get(name))
            if request is not None:
                requests_set = True
            if limits.get(name) is not None:
                limits_set = True
            if limits.get(name) is None or parse_quantity(request) != parse_quantity(limits[name]):
                guaranteed = False
    if not requests_set and not limits_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names replaced, unknown left as written, $$ -> $."""
    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return _VAR.sub(one, text)


def field_ref(pod: dict, path: str, node_ip: str) -> str:
    metadata, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    simple = {"metadata.name": metadata.get("name", ""),
              "metadata.namespace": metadata.get("namespace", ""),
              "metadata.uid": metadata.get("uid", ""),
              "spec.nodeName": spec.get("nodeName", ""),
              "spec.serviceAccountName": spec.get("serviceAccountName", ""),
              "status.hostIP": node_ip, "status.hostIPs": node_ip,
              "status.podIP": status.get("podIP", ""),
              "status.podIPs": ",".join(ip["ip"] for ip in status.get("podIPs") or [])}
    if path in simple:
        return simple[path]
    match = re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", path)
    if match:
        return (metadata.get(match.group(1)) or {}).get(match.group(2), "")
    if path in ("metadata.labels", "metadata.annotations"):
        items = metadata.get(path.split(".")[1]) or {}
        return "\n".join(f'{key}="{value}"' for key, value in sorted(items.items()))
    raise ContainerConfigError(f"unsupported fieldRef fieldPath {path!r}")


def resource_ref(container: dict, ref: dict, node_allocatable: dict) -> str:
    """resourceFieldRef: limits default to the node's allocatable, divided by the divisor."""
    resource = ref.get("resource", "")
    kind, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    value = (resources.get(kind) or {}).get(name)
    if value is None:
        value = node_allocatable.get(name, "0") if kind == "limits" else "0"
    divisor = parse_quantity(ref.get("divisor") or "1")
    number = parse_quantity(value) / divisor
    whole = int(number) if number == int(number) else int(number) + 1   # kubelet rounds up
    return str(whole)


async def container_env(pod: dict, container: dict, lookup: Lookup, node_ip: str,
                        node_allocatable: dict, service_env: dict[str, str]) -> dict[str, str]:
    """The container's environment in kubelet's order: service links, envFrom, then env."""
    env: dict[str, str] = dict(service_env)
    namespace = pod["metadata"].get("namespace", "default")
    for source in container.get("envFrom") or []:
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = source.get(key)
            if ref is None:
                continue
            obj = await lookup(kind, ref["name"])
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(f'{kind.lower()} "{ref["name"]}" not found')
            for name, value in _data(obj).items():
                env[source.get("prefix", "") + name] = value
    for item in container.get("env") or []:
        name = item["name"]
        if "valueFrom" not in item:
            env[name] = expand(item.get("value", ""), env)
            continue
        source = item["valueFrom"]
        if "fieldRef" in source:
            env[name] = field_ref(pod, source["fieldRef"]["fieldPath"], node_ip)
        elif "resourceFieldRef" in source:
            env[name] = resource_ref(container, source["resourceFieldRef"], node_allocatable)
        else:
            for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                ref = source.get(key)
                if ref is None:
                    continue
                obj = await lookup(kind, ref["name"])
                data = _data(obj) if obj is not None else None
                if data is None or ref["key"] not in data:
                    if ref.get("optional"):
                        break
                    what = (f'{kind.lower()} "{ref["name"]}" not found' if data is None else
                            f'couldn\'t find key {ref["key"]} in {kind} {namespace}/{ref["name"]}')
                    raise ContainerConfigError(what)
                env[name] = data[ref["key"]]
    return env


def _data(obj: dict) -> dict[str, str]:
    """A configMap's or secret's data as text (secrets are base64 in the API)."""
    if obj.get("kind") == "Secret":
        return {key: base64.b64decode(value).decode(errors="replace")
                for key, value in (obj.get("data") or {}).items()} | \
            dict(obj.get("stringData") or {})
    return dict(obj.get("data") or {})


def command_line(container: dict, env: dict[str, str]) -> tuple[list[str] | None, list[str] | None]:
    """(entrypoint, cmd) for the runtime: command replaces the image's entrypoint, args its cmd."""
    command = [expand(part, env) for part in container["command"]] \
        if container.get("command") else None
    args = [expand(part, env) for part in container["args"]] if container.get("args") else None
    if command is not None and args is None:
        args = []
    return command, args


MIN_SHARES, SHARES_PER_CPU = 2, 1024


def milli_cpu_to_shares(milli_cpu: int) -> int:
    """kubelet's MilliCPUToShares: 1 CPU is 1024 shares; none (or too little) is the minimum, 2."""
    return max(milli_cpu * SHARES_PER_CPU // 1000, MIN_SHARES)


def cpu_shares(container: dict) -> int:
    """The container's CPU weight: from its CPU request (its limit when no request is given)."""
    resources = container.get("resources") or {}
    cpu = (resources.get("requests") or {}).get("cpu", (resources.get("limits") or {}).get("cpu"))
    return milli_cpu_to_shares(milli(cpu) if cpu is not None else 0)


def limits(container: dict) -> dict:
    """Runtime create options from resources: memory bytes and CPUs from its limits, CPU
    shares (its weight among the pod's containers) from its request."""
    resource_limits = (container.get("resources") or {}).get("limits") or {}
    out: dict = {"cpu_shares": cpu_shares(container)}
    if "memory" in resource_limits:
        out["memory"] = max(int(parse_quantity(resource_limits["memory"])), 6 << 20)
    if "cpu" in resource_limits:
        out["cpus"] = max(float(parse_quantity(resource_limits["cpu"])), 0.01)
    return out


def user_of(pod: dict, container: dict) -> str | None:
    """runAsUser/runAsGroup (container over pod) as the runtime's "uid:gid"."""
    pod_context = pod["spec"].get("securityContext") or {}
    context = container.get("securityContext") or {}
    uid = context.get("runAsUser", pod_context.get("runAsUser"))
    gid = context.get("runAsGroup", pod_context.get("runAsGroup"))
    if uid is None:
        return None
    return f"{uid}:{gid if gid is not None else uid}" if gid is not None else str(uid)


def security_options(pod: dict, container: dict) -> dict:
    """Runtime create options from securityContext: capabilities, privileged, a read-only root,
    no_new_privs (set unless privilege escalation is allowed, as the runtime's safe default)."""
    context = container.get("securityContext") or {}
    capabilities = context.get("capabilities") or {}
    privileged = bool(context.get("privileged"))
    out: dict = {}
    if privileged:
        out["privileged"] = True
    if capabilities.get("add"):
        out["cap_add"] = list(capabilities["add"])
    if capabilities.get("drop"):
        out["cap_drop"] = list(capabilities["drop"])
    if context.get("readOnlyRootFilesystem"):
        out["read_only"] = True
    out["no_new_privileges"] = not (privileged or context.get("allowPrivilegeEscalation") is True)
    return out


def check_non_root(pod: dict, container: dict, image_user: str) -> None:
    """runAsNonRoot, as kubelet verifies it before creating the container."""
    pod_context = pod["spec"].get("securityContext") or {}
    context = container.get("securityContext") or {}
    if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
        return
    meta = pod["metadata"]
    where = (f'(pod: "{meta["name"]}_{meta.get("namespace")}({meta.get("uid")})", container: '
             f'{container["name"]})')
    uid = context.get("runAsUser", pod_context.get("runAsUser"))
    if uid is not None:
        if int(uid) == 0:
            raise ContainerConfigError(f"container's runAsUser breaks non-root policy {where}")
        return
    user = (image_user or "").split(":")[0]
    if user in ("", "root", "0"):
        raise ContainerConfigError(f"container has runAsNonRoot and image will run as root "
                                   f"{where}")
    if not user.isdigit():
        raise ContainerConfigError(f"container has runAsNonRoot and image has non-numeric user "
                                   f"({user}), cannot verify user is non-root {where}")
