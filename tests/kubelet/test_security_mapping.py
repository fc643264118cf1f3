"""The kubelet's mapping of securityContext to the runtime's seccomp, userns, proc_mount and
sysctls options, and its sysctl admission rule (pure functions, no cluster)."""

from __future__ import annotations

import pytest

from provisioner.components.kubelet import security
from provisioner.components.kubelet.config import ConfigError, check
from provisioner.components.kubelet.podspec import ContainerConfigError

ROOT = "/var/lib/kubelet"


def pod(container_context=None, pod_context=None, **spec):
    container = {"name": "c", "image": "busybox"}
    if container_context is not None:
        container["securityContext"] = container_context
    return {"metadata": {"name": "p"},
            "spec": {"containers": [container], "securityContext": pod_context or {}, **spec}}


def options(p, seccomp_default=False):
    return security.runtime_options(p, p["spec"]["containers"][0], root_dir=ROOT,
                                    seccomp_default=seccomp_default)


RUNTIME_DEFAULT = {"type": "RuntimeDefault"}
UNCONFINED = {"type": "Unconfined"}


@pytest.mark.parametrize("container_context, pod_context, seccomp_default, expected", [
    (None, None, False, "unconfined"),                       # upstream's default
    (None, None, True, "runtime/default"),                   # seccompDefault: true
    ({"seccompProfile": RUNTIME_DEFAULT}, None, False, "runtime/default"),
    (None, {"seccompProfile": RUNTIME_DEFAULT}, False, "runtime/default"),
    (None, {"seccompProfile": UNCONFINED}, True, "unconfined"),
    ({"seccompProfile": UNCONFINED}, {"seccompProfile": RUNTIME_DEFAULT}, True, "unconfined"),
    ({"seccompProfile": RUNTIME_DEFAULT}, {"seccompProfile": UNCONFINED}, False,
     "runtime/default"),                                     # the container's wins
    ({"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/audit.json"}},
     None, False, f"localhost/{ROOT}/seccomp/profiles/audit.json"),
    (None, {"seccompProfile": {"type": "Localhost", "localhostProfile": "a.json"}}, True,
     f"localhost/{ROOT}/seccomp/a.json"),
    ({"privileged": True}, {"seccompProfile": RUNTIME_DEFAULT}, True, "unconfined"),
    ({"privileged": True}, None, True, "unconfined"),
])
def test_seccomp_profile(container_context, pod_context, seccomp_default, expected):
    assert options(pod(container_context, pod_context), seccomp_default)["seccomp"] == expected


@pytest.mark.parametrize("name", ["../escape.json", "a/../../escape.json", "/etc/profile.json",
                                  "", ".."])
def test_a_localhost_profile_outside_the_seccomp_directory_is_refused(name):
    with pytest.raises(ContainerConfigError, match="localhostProfile .* must be a relative path "
                                                   f"inside {ROOT}/seccomp"):
        options(pod({"seccompProfile": {"type": "Localhost", "localhostProfile": name}}))


@pytest.mark.parametrize("spec, container_context, expected", [
    ({}, None, {}),
    ({"hostUsers": True}, None, {}),
    ({"hostUsers": False}, None, {"userns": "private"}),
    ({}, {"procMount": "Unmasked"}, {"proc_mount": "Unmasked"}),
    ({}, {"procMount": "Default"}, {"proc_mount": "Default"}),
    ({"securityContext": {"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"},
                                      {"name": "net.ipv4.tcp_fin_timeout", "value": 30}]}},
     None, {"sysctls": {"kernel.shm_rmid_forced": "1", "net.ipv4.tcp_fin_timeout": "30"}}),
])
def test_user_namespace_proc_mount_and_sysctls(spec, container_context, expected):
    p = pod(container_context)
    p["spec"].update(spec)
    got = options(p)
    got.pop("seccomp")
    assert got == expected


def test_an_unknown_proc_mount_is_refused():
    with pytest.raises(ContainerConfigError, match="procMount 'Masked'"):
        options(pod({"procMount": "Masked"}))


@pytest.mark.parametrize("sysctls, allowed, expected", [
    ([], [], None),
    (["kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_keepalive_time",
      "net.ipv4.ip_local_reserved_ports", "net/ipv4/tcp_syncookies"], [], None),
    (["kernel.msgmax"], [], 'forbidden sysctl: "kernel.msgmax" not allowlisted'),
    (["kernel.msgmax"], ["kernel.msgmax"], None),
    (["kernel.msgmax"], ["kernel.msg*"], None),
    (["net.core.somaxconn"], ["kernel.msg*"], 'forbidden sysctl: "net.core.somaxconn" '
                                             'not allowlisted'),
    (["net.core.somaxconn"], ["net.*"], None),
    (["net.core.somaxconn"], ["net.core"], 'forbidden sysctl: "net.core.somaxconn" '
                                          'not allowlisted'),
])
def test_sysctl_admission(sysctls, allowed, expected):
    p = pod(pod_context={"sysctls": [{"name": name, "value": "1"} for name in sysctls]})
    assert security.forbidden_sysctl(p, allowed) == expected


def test_the_config_file_keeps_upstreams_defaults_and_checks_the_new_fields():
    base = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"}
    loaded = check(dict(base), "config.yaml")
    assert (loaded["seccompDefault"], loaded["allowedUnsafeSysctls"]) == (False, [])
    with pytest.raises(ConfigError, match="seccompDefault"):
        check({**base, "seccompDefault": "yes"}, "config.yaml")
