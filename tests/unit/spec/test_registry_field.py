"""`spec.registry`: on by default on port 5000, can be turned off or moved, and bad values are
reported with their field."""

from __future__ import annotations

import pytest

from provisioner.spec import RegistrySettings, load_cluster, validate_cluster

from .documents import minimal


def loaded(write, registry=None):
    doc = minimal()
    if registry is not None:
        doc["spec"]["registry"] = registry
    write("cluster.yaml", doc)
    return load_cluster("cluster.yaml")


def test_the_registry_is_on_by_default_on_the_first_control_plane_host(write):
    spec = loaded(write)
    assert spec.registry == RegistrySettings(enabled=True, port=5000)
    assert spec.registry_host == spec.control_plane_hosts[0]
    assert spec.registry_endpoint == f"{spec.control_plane_hosts[0].address}:5000"


def test_the_registry_can_be_turned_off_or_moved(write):
    assert loaded(write, {"enabled": False}).registry_endpoint is None
    assert loaded(write, {"port": 5443}).registry == RegistrySettings(enabled=True, port=5443)


@pytest.mark.parametrize("registry, message", [
    ({"port": 0}, "spec.registry.port: must be at least 1 (found 0)"),
    ({"enabled": "yes"}, "spec.registry.enabled: must be boolean (found a string)"),
    ({"mirror": True}, "spec.registry.mirror: unknown field"),
])
def test_bad_registry_settings_name_their_field(write, registry, message):
    doc = minimal()
    doc["spec"]["registry"] = registry
    write("cluster.yaml", doc)
    _, errors, _ = validate_cluster("cluster.yaml")
    assert [str(e) for e in errors] == [message]
