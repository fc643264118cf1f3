"""The model's helpers and the problem/error types other code relies on."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from provisioner.errors import InvalidInputError
from provisioner.spec import (
    Artifacts,
    ClusterSpec,
    EtcdSettings,
    Host,
    Networking,
    Problem,
    SpecError,
    SSHSettings,
)
from provisioner.spec.problems import Origin, in_reading_order

SSH = SSHSettings(user="root", port=22, key=Path("/k"))


def make_spec(*hosts: Host) -> ClusterSpec:
    return ClusterSpec(
        name="lab",
        source=Path("/c.yaml"),
        hosts=hosts,
        networking=Networking(ipaddress.ip_network("10.244.0.0/16"),
                              ipaddress.ip_network("10.96.0.0/12"), "cluster.local"),
        etcd=EtcdSettings(),
        artifacts=Artifacts(),
        warnings=(),
    )


ROLE_CASES = [
    (("control-plane", "etcd"), (True, True, False)),
    (("worker",), (False, False, True)),
    (("etcd",), (False, True, False)),
    (("control-plane", "etcd", "worker"), (True, True, True)),
]


@pytest.mark.parametrize("roles, expected", ROLE_CASES, ids=["cp_etcd", "worker", "etcd_only",
                                                             "all_roles"])
def test_host_role_properties(roles, expected) -> None:
    h = Host("h", "10.0.0.1", roles, SSH)
    assert (h.is_control_plane, h.is_etcd, h.is_worker) == expected


def test_role_groups_keep_spec_order_and_lookup_by_name() -> None:
    spec = make_spec(Host("w1", "a", ("worker",), SSH), Host("cp1", "b", ("control-plane",
                                                                          "etcd"), SSH),
                     Host("e1", "c", ("etcd",), SSH))
    assert [h.name for h in spec.etcd_hosts] == ["cp1", "e1"]
    assert [h.name for h in spec.control_plane_hosts] == ["cp1"]
    assert [h.name for h in spec.worker_hosts] == ["w1"]
    assert spec.host("e1").address == "c"
    with pytest.raises(KeyError, match="no host named 'x'"):
        spec.host("x")


def test_defaults_of_settings() -> None:
    assert EtcdSettings() == EtcdSettings(client_port=2379, peer_port=2380,
                                          data_dir="/var/lib/etcd")
    assert Artifacts() == Artifacts(etcd="wheel", wheelhouse=None)


def test_problem_reads_as_field_then_message() -> None:
    assert str(Problem("spec.hosts[1].address", "is required")) == \
        "spec.hosts[1].address: is required"


PATH_CASES = [
    (Origin(), ("spec", "hosts", 1, "address"), "spec.hosts[1].address"),
    (Origin(), ("spec", "hosts", 0, "roles", 2), "spec.hosts[0].roles[2]"),
    (Origin("inventory hosts.yaml"), ("hosts", 0, "address"),
     "inventory hosts.yaml: hosts[0].address"),
    (Origin("inventory hosts.yaml"), (), "inventory hosts.yaml"),
]


@pytest.mark.parametrize("origin, parts, text", PATH_CASES,
                         ids=["nested_field", "list_item", "inventory_field", "inventory_file"])
def test_field_paths(origin, parts, text) -> None:
    assert origin.field(*parts) == text


def test_problems_sort_with_numeric_indexes_and_inventories_last() -> None:
    problems = [Problem("inventory h.yaml: hosts[0].name", "x"), Problem("spec.hosts[10]", "x"),
                Problem("spec.hosts[2]", "x"), Problem("metadata.name", "x"),
                Problem("spec.hosts[2]", "x")]
    assert [p.field for p in in_reading_order(problems)] == [
        "metadata.name", "spec.hosts[2]", "spec.hosts[10]", "inventory h.yaml: hosts[0].name"]


def test_spec_error_is_invalid_input_with_one_line_per_problem() -> None:
    error = SpecError("c.yaml", [Problem("a", "b")], [Problem("w", "x")])
    assert isinstance(error, InvalidInputError)
    assert error.exit_code == 3
    assert error.message == "c.yaml has 1 problem:\n  a: b"
    assert error.path == Path("c.yaml")
    assert error.warnings == [Problem("w", "x")]
    assert error.wrap("loading").message.startswith("loading: c.yaml has 1 problem:")
