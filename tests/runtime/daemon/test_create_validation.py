"""Create requests are checked whole: a bad field is a 400 naming it, and nothing is left behind;
`run` cleans up after a failed start and exits as Docker does."""

from __future__ import annotations

import os
import socket

import pytest

from provisioner.components.runtime.client import RuntimeAPIError

CPUS = os.cpu_count() or 1

BAD_FIELDS = [
    ({"labels": [1]}, "invalid labels"),
    ({"labels": {"a": 1}}, "invalid labels"),
    ({"user": 5}, "invalid user"),
    ({"user": "a b"}, "invalid user"),
    ({"hostname": "h" * 65}, "invalid hostname"),
    ({"hostname": "under_score"}, "invalid hostname"),
    ({"workdir": "relative/dir"}, "invalid workdir"),
    ({"workdir": 3}, "invalid workdir"),
    ({"cpus": "0.001"}, "invalid --cpus value '0.001': the range is 0.01"),
    ({"cpus": "nan"}, "invalid --cpus value 'nan'"),
    ({"cpus": "inf"}, "invalid --cpus value 'inf'"),
    ({"cpus": str(CPUS + 1)}, f"this host has only {CPUS} CPUs"),
    ({"env": "A=1"}, "invalid env"),
    ({"volumes": [7]}, "invalid volume"),
    ({"ports": "80"}, "invalid ports"),
    ({"name": ["x"]}, "invalid name"),
    ({"network": {"a": 1}}, "invalid network"),
]


@pytest.mark.parametrize("fields, message", BAD_FIELDS, ids=[str(f) for f, _ in BAD_FIELDS])
def test_a_bad_field_is_refused_with_400_naming_it(daemon, fields, message):
    before = daemon.container_dirs()
    with pytest.raises(RuntimeAPIError) as refused:
        daemon.client.create("busybox", cmd=["true"], **fields)
    assert refused.value.status == 400 and message in str(refused.value)
    assert daemon.container_dirs() == before
    assert "Traceback" not in daemon.log(), daemon.log()


def test_good_values_of_those_fields_run(daemon, remove_after):
    remove_after.append("validated")
    daemon.client.create("busybox", name="validated", labels={"team": "a"}, user="65534:65534",
                         hostname="h" * 64, workdir="/tmp", cpus="0.01",
                         cmd=["sh", "-c", "echo $(id -u) $(hostname | wc -c) $(pwd)"],
                         network="none")
    daemon.client.start("validated")
    assert daemon.client.wait("validated")["exit_code"] == 0
    assert daemon.cli("logs", "validated").stdout == "65534 65 /tmp\n"


@pytest.mark.parametrize("command, exit_code, message", [
    (["/nonexistent"], 127, "executable file not found"),
    (["/etc/passwd"], 126, "permission denied"),
])
def test_run_rm_whose_start_fails_leaves_no_container(daemon, command, exit_code, message):
    before = daemon.container_dirs()
    for detach in ([], ["-d"]):
        result = daemon.cli("run", "--rm", *detach, "--network", "none", "busybox", *command)
        assert result.returncode == exit_code, result.stderr
        assert result.stderr.startswith("Error: ") and message in result.stderr
        assert daemon.container_dirs() == before


def test_port_in_use_error_names_the_new_container_by_its_name(daemon, remove_after):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = daemon.cli("run", "-d", "--name", "wants-busy-port", "-p", f"{port}:80",
                            "busybox", "true")
    assert result.returncode == 125
    assert "for container wants-busy-port" in result.stderr, result.stderr
