"""kubelet: the pod security settings the runtime enforces: seccomp, user namespaces, procMount
and sysctls.

Pure functions over the pod dict, used by containerstart (runtime create options) and podworker
(admission: a pod asking for a sysctl the node does not allow is rejected, as kubelet does with
reason SysctlForbidden). podspec.security_options covers capabilities, privileged, a read-only
root and no_new_privs; this module the rest of securityContext.
"""

from __future__ import annotations

import fnmatch
import os

from .podspec import ContainerConfigError

# The sysctls kubelet allows every pod (pkg/kubelet/sysctl): namespaced and isolated per pod.
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
})

# securityContext.seccompProfile.type -> the runtime's seccomp setting (Localhost is a path).
_SECCOMP_TYPES = {"RuntimeDefault": "runtime/default", "Unconfined": "unconfined"}
_PROC_MOUNTS = ("Default", "Unmasked")


def seccomp_setting(pod: dict, container: dict, *, root_dir: str, seccomp_default: bool) -> str:
    """The runtime's seccomp for a container: its own profile, else the pod's, else
    RuntimeDefault with seccompDefault or unconfined without; privileged ones are unconfined."""
    context = container.get("securityContext") or {}
    if context.get("privileged"):
        return "unconfined"
    pod_context = pod["spec"].get("securityContext") or {}
    profile = context.get("seccompProfile") or pod_context.get("seccompProfile")
    if not profile:
        return "runtime/default" if seccomp_default else "unconfined"
    kind = profile.get("type")
    if kind in _SECCOMP_TYPES:
        return _SECCOMP_TYPES[kind]
    if kind != "Localhost":
        raise ContainerConfigError(f"seccompProfile.type {kind!r} is not supported; use "
                                   "RuntimeDefault, Unconfined or Localhost")
    return "localhost/" + localhost_profile(root_dir, profile.get("localhostProfile") or "")


def localhost_profile(root_dir: str, name: str) -> str:
    """<root-dir>/seccomp/<name>, refusing a name that leads out of that directory."""
    base = os.path.join(os.path.abspath(root_dir), "seccomp")
    path = os.path.normpath(os.path.join(base, name))
    if not name or os.path.isabs(name) or not path.startswith(base + os.sep):
        raise ContainerConfigError(
            f"seccompProfile.localhostProfile {name!r} must be a relative path inside {base} "
            "(the kubelet's seccomp profile directory)")
    return path


def runtime_options(pod: dict, container: dict, *, root_dir: str, seccomp_default: bool) -> dict:
    """The runtime create options for the settings of this module."""
    spec = pod["spec"]
    context = container.get("securityContext") or {}
    out: dict = {"seccomp": seccomp_setting(pod, container, root_dir=root_dir,
                                            seccomp_default=seccomp_default)}
    if spec.get("hostUsers") is False:
        out["userns"] = "private"     # the runtime gives every container of the pod one block
    proc_mount = context.get("procMount")
    if proc_mount is not None:
        if proc_mount not in _PROC_MOUNTS:
            raise ContainerConfigError(f"securityContext.procMount {proc_mount!r} is not "
                                       "supported; use Default or Unmasked")
        out["proc_mount"] = proc_mount
    sysctls = {item["name"]: str(item.get("value", ""))
               for item in (spec.get("securityContext") or {}).get("sysctls") or []}
    if sysctls:
        out["sysctls"] = sysctls
    return out


def forbidden_sysctl(pod: dict, allowed_unsafe: list[str]) -> str | None:
    """kubelet's admission message for the first sysctl neither safe nor allowed by the node's
    allowedUnsafeSysctls (names or patterns ending in *), or None when all may be set."""
    for item in (pod["spec"].get("securityContext") or {}).get("sysctls") or []:
        name = item.get("name", "").replace("/", ".")
        if name in SAFE_SYSCTLS:
            continue
        if any(fnmatch.fnmatchcase(name, pattern) if pattern.endswith("*") else name == pattern
               for pattern in (p.replace("/", ".") for p in allowed_unsafe)):
            continue
        return f'forbidden sysctl: "{name}" not allowlisted'
    return None
