"""PodSecurity: the Pod Security Standards from namespace labels (kube-apiserver's plugin).

`pod-security.kubernetes.io/<mode>: privileged|baseline|restricted` with mode enforce (refuse
pods), warn (a Warning header) or audit (recorded by the audit log, not here). Workload
templates (Deployment, StatefulSet, Job...) are checked for warn only, as Kubernetes does. The
checks below are the standards' baseline and restricted controls, named and worded as
kube-apiserver reports them, in its order (sorted by check id).
"""

from __future__ import annotations

from typing import Callable

from . import Attributes, Base, forbidden

LABEL = "pod-security.kubernetes.io/"
LEVELS = ("privileged", "baseline", "restricted")
BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                 "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret", "image"}
TEMPLATE_KINDS = {("apps", "deployments"), ("apps", "replicasets"), ("apps", "daemonsets"),
                  ("apps", "statefulsets"), ("batch", "jobs"), ("", "replicationcontrollers"), ("", "podtemplates")}


def _who(names: list[str], noun: str = "container") -> str:
    quoted = ", ".join(f'"{n}"' for n in names)
    return f"{noun} {quoted}" if len(names) == 1 else f"{noun}s {quoted}"


def _containers(spec: dict) -> list[dict]:
    return [c for key in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(key) or []
            if isinstance(c, dict)]


def _sc(obj: dict) -> dict:
    sc = obj.get("securityContext")
    return sc if isinstance(sc, dict) else {}


def allow_privilege_escalation(spec: dict) -> str | None:
    bad = [c.get("name", "") for c in _containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]
    if bad:
        return f"allowPrivilegeEscalation != false ({_who(bad)} must set securityContext.allowPrivilegeEscalation=false)"
    return None


def capabilities_baseline(spec: dict) -> str | None:
    bad = []
    for c in _containers(spec):
        added = [x for x in (_sc(c).get("capabilities") or {}).get("add") or [] if x not in BASELINE_CAPS]
        if added:
            bad.append((c.get("name", ""), added))
    if not bad:
        return None
    caps = sorted({cap for _, added in bad for cap in added})
    return (f"non-default capabilities ({_who([n for n, _ in bad])} must not include "
            f"{', '.join(repr(x).replace(chr(39), chr(34)) for x in caps)} in securityContext.capabilities.add)")


def capabilities_restricted(spec: dict) -> str | None:
    no_drop, extra = [], []
    for c in _containers(spec):
        caps = _sc(c).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            no_drop.append(c.get("name", ""))
        added = [x for x in caps.get("add") or [] if x != "NET_BIND_SERVICE"]
        if added:
            extra.append((c.get("name", ""), added))
    parts = []
    if no_drop:
        parts.append(f'{_who(no_drop)} must set securityContext.capabilities.drop=["ALL"]')
    if extra:
        caps = sorted({cap for _, added in extra for cap in added})
        parts.append(f"{_who([n for n, _ in extra])} must not include "
                     f"{', '.join(chr(34) + x + chr(34) for x in caps)} in securityContext.capabilities.add")
    return f"unrestricted capabilities ({'; '.join(parts)})" if parts else None


def host_namespaces(spec: dict) -> str | None:
    on = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True]
    return f"host namespaces ({', '.join(on)})" if on else None


def host_path_volumes(spec: dict) -> str | None:
    bad = [v.get("name", "") for v in spec.get("volumes") or [] if isinstance(v, dict) and "hostPath" in v]
    return f"hostPath volumes ({_who(bad, 'volume')})" if bad else None


def host_ports(spec: dict) -> str | None:
    bad, ports = [], []
    for c in _containers(spec):
        used = [p.get("hostPort") for p in c.get("ports") or [] if isinstance(p, dict) and p.get("hostPort")]
        if used:
            bad.append(c.get("name", ""))
            ports += used
    if not bad:
        return None
    return f"hostPort ({_who(bad)} {'uses' if len(bad) == 1 else 'use'} hostPort{'s' if len(ports) > 1 else ''} " \
           f"{', '.join(str(p) for p in ports)})"


def privileged(spec: dict) -> str | None:
    bad = [c.get("name", "") for c in _containers(spec) if _sc(c).get("privileged") is True]
    return f"privileged ({_who(bad)} must not set securityContext.privileged=true)" if bad else None


def restricted_volumes(spec: dict) -> str | None:
    bad = []
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict):
            continue
        kinds = [k for k in v if k != "name" and k not in RESTRICTED_VOLUMES]
        if kinds:
            bad.append((v.get("name", ""), kinds[0]))
    if not bad:
        return None
    types = sorted({k for _, k in bad})
    return (f"restricted volume types ({_who([n for n, _ in bad], 'volume')} "
            f"{'uses' if len(bad) == 1 else 'use'} restricted volume type{'s' if len(types) > 1 else ''} "
            f"{', '.join(chr(34) + t + chr(34) for t in types)})")


def run_as_non_root(spec: dict) -> str | None:
    pod = _sc(spec).get("runAsNonRoot")
    explicit_false = [c.get("name", "") for c in _containers(spec) if _sc(c).get("runAsNonRoot") is False]
    if explicit_false:
        return f"runAsNonRoot != true ({_who(explicit_false)} must not set securityContext.runAsNonRoot=false)"
    if pod is True:
        return None
    unset = [c.get("name", "") for c in _containers(spec) if _sc(c).get("runAsNonRoot") is not True]
    if unset:
        return f"runAsNonRoot != true (pod or {_who(unset)} must set securityContext.runAsNonRoot=true)"
    return None


def run_as_user(spec: dict) -> str | None:
    if _sc(spec).get("runAsUser") == 0:
        return "runAsUser=0 (pod must not set runAsUser=0)"
    bad = [c.get("name", "") for c in _containers(spec) if _sc(c).get("runAsUser") == 0]
    return f"runAsUser=0 ({_who(bad)} must not set runAsUser=0)" if bad else None


def _seccomp(obj: dict) -> str | None:
    return (_sc(obj).get("seccompProfile") or {}).get("type")


def seccomp_baseline(spec: dict) -> str | None:
    if _seccomp(spec) == "Unconfined":
        return 'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")'
    bad = [c.get("name", "") for c in _containers(spec) if _seccomp(c) == "Unconfined"]
    if bad:
        return f'seccompProfile ({_who(bad)} must not set securityContext.seccompProfile.type to "Unconfined")'
    return None


def seccomp_restricted(spec: dict) -> str | None:
    ok = ("RuntimeDefault", "Localhost")
    if _seccomp(spec) not in (None, *ok):
        return 'seccompProfile (pod must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
    if _seccomp(spec) in ok:
        bad = [c.get("name", "") for c in _containers(spec) if _seccomp(c) not in (None, *ok)]
        if bad:
            return (f'seccompProfile ({_who(bad)} must set securityContext.seccompProfile.type to '
                    '"RuntimeDefault" or "Localhost")')
        return None
    bad = [c.get("name", "") for c in _containers(spec) if _seccomp(c) not in ok]
    if bad:
        return (f'seccompProfile (pod or {_who(bad)} must set securityContext.seccompProfile.type to '
                '"RuntimeDefault" or "Localhost")')
    return None


# (check id, level it starts at, check); kube-apiserver reports failures sorted by check id
CHECKS: list[tuple[str, str, Callable[[dict], str | None]]] = sorted([
    ("allowPrivilegeEscalation", "restricted", allow_privilege_escalation),
    ("capabilities_baseline", "baseline", capabilities_baseline),
    ("capabilities_restricted", "restricted", capabilities_restricted),
    ("hostNamespaces", "baseline", host_namespaces),
    ("hostPathVolumes", "baseline", host_path_volumes),
    ("hostPorts", "baseline", host_ports),
    ("privileged", "baseline", privileged),
    ("restrictedVolumes", "restricted", restricted_volumes),
    ("runAsNonRoot", "restricted", run_as_non_root),
    ("runAsUser", "restricted", run_as_user),
    ("seccompProfile_baseline", "baseline", seccomp_baseline),
    ("seccompProfile_restricted", "restricted", seccomp_restricted),
], key=lambda c: c[0])


def violations(level: str, spec: dict) -> list[str]:
    if level not in LEVELS or level == "privileged":
        return []
    wanted = ("baseline",) if level == "baseline" else ("baseline", "restricted")
    out = [fn(spec) for _, at, fn in CHECKS if at in wanted]
    return [v for v in out if v]


def _level(labels: dict, mode: str) -> tuple[str, str] | None:
    level = labels.get(LABEL + mode)
    if level not in LEVELS or level == "privileged":
        return None
    return level, labels.get(f"{LABEL}{mode}-version") or "latest"


class PodSecurity(Base):
    name = "PodSecurity"

    async def validate(self, a: Attributes) -> None:
        if a.operation not in ("CREATE", "UPDATE") or a.sub or not isinstance(a.obj, dict) or not a.req.namespace:
            return
        is_pod = a.resource == ("", "pods")
        if not is_pod and a.resource not in TEMPLATE_KINDS:
            return
        if is_pod:
            spec = a.obj.get("spec")
            if a.operation == "UPDATE" and a.old is not None and spec == (a.old.get("spec")):
                return  # status and metadata updates are never refused
        else:
            spec = ((a.obj.get("spec") or {}).get("template") or {}).get("spec") if \
                a.resource != ("", "podtemplates") else (a.obj.get("template") or {}).get("spec")
        if not isinstance(spec, dict):
            return
        ns = await self.storage.cached_get("namespaces", None, a.req.namespace, a.req.reads)
        labels = ((ns or {}).get("metadata") or {}).get("labels") or {}
        enforce = _level(labels, "enforce")
        if is_pod and enforce:
            found = violations(enforce[0], spec)
            if found:
                raise forbidden(a, f'violates PodSecurity "{enforce[0]}:{enforce[1]}": {", ".join(found)}')
        warn = _level(labels, "warn")
        if warn:
            found = violations(warn[0], spec)
            if found:
                a.req.warnings.append(f'would violate PodSecurity "{warn[0]}:{warn[1]}": {", ".join(found)}')
