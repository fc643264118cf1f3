"""Create options the kubelet's securityContext needs: cap_add/cap_drop/privileged, read_only and
no_new_privileges, kept for exec too; bad names are refused with the field named."""

from __future__ import annotations

import pytest

from provisioner.components.runtime.client import RuntimeAPIError


def test_unknown_capability_is_refused(daemon):
    with pytest.raises(RuntimeAPIError) as error:
        daemon.client.create("busybox:latest", cmd=["true"], cap_add=["BOGUS"])
    assert error.value.status == 400
    assert "invalid cap_add entry 'BOGUS'" in str(error.value)


@pytest.mark.parametrize("options, check, expected", [
    ({"privileged": True}, "grep CapEff /proc/self/status", "CAPS_HELD"),
    ({"cap_drop": ["ALL"], "cap_add": ["CHOWN"]}, "grep CapEff /proc/self/status",
     "0000000000000001"),
    ({"read_only": True}, "touch /x 2>&1; true", "Read-only file system"),
    ({"no_new_privileges": False}, "grep NoNewPrivs /proc/self/status", "0"),
    ({}, "grep NoNewPrivs /proc/self/status", "1"),
])
def test_security_options_apply_to_the_process_and_its_execs(daemon, remove_after, options,
                                                             check, expected):
    container = daemon.client.create("busybox:latest", cmd=["sleep", "3600"], **options)
    remove_after.append(container)
    daemon.client.start(container)
    code, output = daemon.client.exec_collect(container, ["sh", "-c", check])
    assert code == 0
    if expected == "CAPS_HELD":      # privileged: every capability the (root) daemon holds
        with open("/proc/self/status") as status:
            expected = next(line.split()[1] for line in status if line.startswith("CapPrm:"))
    assert expected in output.decode()
