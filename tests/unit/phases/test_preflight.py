"""The preflight probe's parsing and the per-host checks, table-driven."""

from __future__ import annotations

import sys

import pytest

from provisioner.phases.preflight import check_host, parse_probe, probe_command

PY = "%d.%d" % sys.version_info[:2]
GOOD = {
    "os": "debian 12",
    "python": PY,
    "venv": "yes",
    "init": "systemd",
    "systemd_running": "yes",
    "clock": "1000",
    "disk_mb": "5000",
    "etcd_active": "inactive",
    "port_2379": "free",
    "port_2380": "free",
}


def _check(is_etcd: bool = True, **changes: str) -> list[str]:
    facts = dict(GOOD, **changes)
    return check_host(facts, is_etcd=is_etcd, ports=[2379, 2380], operator_clock=1000.0)


def test_a_fit_host_has_no_problems():
    assert _check() == []


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"os": ""}, "no /etc/os-release: not a supported Linux distribution"),
        ({"python": ""}, "python3 is not installed; install it (apt-get install python3 python3-venv)"),
        ({"python": "3.9"}, f"python3 is 3.9 but the operator runs {PY}; the wheels shipped to hosts are built for {PY}"),
        ({"venv": "no"}, "python3 cannot create virtualenvs; install python3-venv"),
        ({"init": "sh"}, "systemd is not the init system (PID 1 is sh); this provisioner installs systemd units"),
        ({"port_2380": "used"}, "port 2380 already in use by another program; stop it or change spec.etcd ports"),
        ({"clock": "1100"}, "clock is 100s away from the operator's; TLS and etcd need synchronised clocks (enable NTP, e.g. systemd-timesyncd)"),
        ({"disk_mb": "100"}, "only 100 MiB free on /; need at least 1024 MiB"),
        ({"disk_mb": ""}, "could not read free disk space on /"),
    ],
)
def test_each_unfit_fact_gives_one_clear_problem(changes, expected):
    assert _check(**changes) == [expected]


def test_ports_held_by_our_own_etcd_are_fine():
    assert _check(etcd_active="active", port_2379="used", port_2380="used") == []


def test_ports_do_not_matter_on_hosts_without_etcd():
    assert _check(is_etcd=False, port_2379="used") == []


def test_probe_output_parses_to_facts():
    assert parse_probe("os=debian 12\npython=3.11\nnoise\nport_2379=free\n") == {
        "os": "debian 12",
        "python": "3.11",
        "port_2379": "free",
    }


def test_probe_checks_the_configured_ports():
    command = probe_command([12379, 12380])
    assert "12379 12380" in command and "{ports}" not in command and "{unit}" not in command


@pytest.mark.parametrize("fact, package", [("busybox", "busybox-static"), ("iptables", "iptables")])
def test_a_node_without_what_pods_need_is_told_which_package_to_install(fact, package):
    facts = {**GOOD, "busybox": "yes", "iptables": "yes", fact: "no"}
    problems = check_host(facts, is_etcd=False, ports=[2379, 2380], operator_clock=1000.0,
                          is_node=True)
    assert problems == [f"{package} is not installed; a node needs it (apt-get install {package})"]
    # An etcd-only host runs no pods and needs neither.
    assert check_host(facts, is_etcd=True, ports=[2379, 2380], operator_clock=1000.0) == []


def test_the_registry_port_must_be_free_on_the_registry_host_unless_our_registry_holds_it():
    facts = dict(GOOD, port_5000="used", registry_active="inactive")
    problems = check_host(facts, is_etcd=False, ports=[2379, 2380, 5000], operator_clock=1000.0,
                          registry_port=5000)
    assert problems == ["port 5000 already in use by another program; the cluster's registry "
                        "listens there: stop it, change spec.registry.port or set "
                        "spec.registry.enabled: false"]
    assert check_host(dict(facts, registry_active="active"), is_etcd=False,
                      ports=[2379, 2380, 5000], operator_clock=1000.0, registry_port=5000) == []
    # on the other hosts the port is theirs to use
    assert check_host(facts, is_etcd=False, ports=[2379, 2380, 5000], operator_clock=1000.0) == []


def test_probe_asks_whether_our_registry_runs():
    assert "is-active provisioner-registry.service" in probe_command([2379, 2380, 5000])
