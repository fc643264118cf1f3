"""Fields a running cluster cannot change in place: each change is named with its path."""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path

import pytest
import yaml

from provisioner.phases.immutable import changed_fields
from provisioner.phases.upload_config import spec_document
from provisioner.spec import Artifacts, ClusterSpec, EtcdSettings, Host, Networking, SSHSettings

SSH = SSHSettings(user="root", port=22, key=Path("/k"))


def spec(**networking) -> ClusterSpec:
    values = {"pod_cidr": ipaddress.ip_network("10.244.0.0/16"),
              "service_cidr": ipaddress.ip_network("10.96.0.0/12"), **networking}
    return ClusterSpec(name="lab", source=Path("/c.yaml"),
                       hosts=(Host("cp1", "10.0.0.11", ("control-plane", "etcd"), SSH),),
                       networking=Networking(**values), etcd=EtcdSettings(),
                       artifacts=Artifacts())


RUNNING = yaml.safe_load(spec_document(spec()))


def test_an_unchanged_spec_and_a_new_host_change_nothing_immutable():
    grown = dataclasses.replace(spec(), hosts=(*spec().hosts,
                                               Host("w1", "10.0.0.21", ("worker",), SSH)))
    assert changed_fields(RUNNING, spec()) == []
    assert changed_fields(RUNNING, grown) == []


@pytest.mark.parametrize("changed, path, before, after", [
    ({"pod_cidr": ipaddress.ip_network("10.250.0.0/16")}, "spec.networking.podCIDR",
     "10.244.0.0/16", "10.250.0.0/16"),
    ({"service_cidr": ipaddress.ip_network("10.100.0.0/16")}, "spec.networking.serviceCIDR",
     "10.96.0.0/12", "10.100.0.0/16"),
    ({"dns_domain": "corp.local"}, "spec.networking.dnsDomain", "cluster.local", "corp.local"),
])
def test_a_changed_range_or_domain_is_named_with_both_values(changed, path, before, after):
    assert changed_fields(RUNNING, spec(**changed)) == [(path, before, after)]


def test_changed_etcd_ports_are_named():
    moved = dataclasses.replace(spec(), etcd=EtcdSettings(client_port=12379))
    assert changed_fields(RUNNING, moved) == [("spec.etcd.clientPort", 2379, 12379)]
