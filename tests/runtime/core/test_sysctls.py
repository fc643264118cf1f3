"""Namespaced sysctls (spec.sysctls) are set in the container's own namespaces only, and a
container whose root is unprivileged (user namespace) can bind low ports once the pod asks for
net.ipv4.ip_unprivileged_port_start=0, as Kubernetes' safe sysctls allow."""

from .conftest import read_log, run_to_exit
from .test_userns import IDS


def _host_value(name: str) -> str:
    with open("/proc/sys/" + name.replace(".", "/")) as f:
        return f.read().strip()


def test_sysctls_apply_inside_and_not_on_the_host(make_spec):
    before = _host_value("net.ipv4.ip_unprivileged_port_start")
    spec = make_spec(["sh", "-c", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start "
                                  "/proc/sys/kernel/shmmni"],
                     sysctls={"net.ipv4.ip_unprivileged_port_start": "0",
                              "kernel.shmmni": "1234"})
    final = run_to_exit(spec)
    assert final.exit_code == 0, read_log(spec)
    assert read_log(spec).split() == ["0", "1234"]
    assert _host_value("net.ipv4.ip_unprivileged_port_start") == before


def test_root_in_a_user_namespace_binds_a_low_port_with_the_sysctl(make_spec):
    # httpd binds, then goes to the background: it returns at once either way
    bind_80 = "httpd -p 80 -h / 2>&1 && echo bound"
    refused = make_spec(["sh", "-c", bind_80], user_namespace=IDS)
    run_to_exit(refused)
    allowed = make_spec(["sh", "-c", bind_80], user_namespace=IDS,
                        sysctls={"net.ipv4.ip_unprivileged_port_start": "0"})
    run_to_exit(allowed)
    assert "bound" in read_log(allowed)
    assert "Permission denied" in read_log(refused) and "bound" not in read_log(refused)
