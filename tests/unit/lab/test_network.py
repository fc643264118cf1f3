"""Lab addressing: subnets, host addresses, bridge names, picking a free subnet."""

from __future__ import annotations

import pytest

from provisioner.errors import ProvisionerError
from provisioner.lab import network


@pytest.mark.parametrize(
    ("index", "number", "address"),
    [(0, 1, "10.213.0.11"), (0, 3, "10.213.0.13"), (7, 2, "10.213.7.12"),
     (255, 200, "10.213.255.210")],
)
def test_host_address(index, number, address):
    assert network.host_address(index, number) == address


@pytest.mark.parametrize("number", [0, 201])
def test_host_address_out_of_range_is_an_error(number):
    with pytest.raises(ProvisionerError):
        network.host_address(0, number)


def test_names_of_a_subnet():
    assert network.bridge_name(4) == "plab4"
    assert network.subnet(4) == "10.213.4.0/24"
    assert network.gateway(4) == "10.213.4.1"
    assert len(network.bridge_name(255)) <= 15  # Linux interface name limit


@pytest.mark.parametrize(
    ("labs", "machine", "expected"),
    [
        ([], [], 0),
        ([0, 1], [], 2),
        ([], ["10.213.0.1/24"], 1),
        ([0], ["10.213.1.1/24", "192.168.1.5/24"], 2),
        ([1], ["10.213.0.1/24"], 2),
        ([], ["10.0.0.1/8"], 0),  # a wider route elsewhere does not block 10.213.x
    ],
    ids=["first", "after-labs", "taken-on-machine", "both", "holes", "unrelated"],
)
def test_pick_subnet_index_skips_taken_subnets(labs, machine, expected):
    assert network.pick_subnet_index(labs, machine) == expected


def test_pick_subnet_index_fails_when_all_are_taken():
    with pytest.raises(ProvisionerError, match="no free lab subnet"):
        network.pick_subnet_index(range(256), [])
