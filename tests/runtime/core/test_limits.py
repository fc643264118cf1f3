"""Resource limits through real cgroups: memory (OOM kill reported), CPU quota (throttling seen
in cpu.stat), pids."""

import glob
import json
import os
import subprocess
import sys
import time

import pytest

from provisioner.components.runtime.container import api, cgroups
from provisioner.components.runtime.container.errors import ContainerError
from provisioner.components.runtime.container.spec import Resources

from ..readonly_cgroups import READ_ONLY_CGROUPS_PREAMBLE
from .conftest import read_log, run_to_exit, wait_for_log


def _poll(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    return condition()


def test_memory_limit_oom_kills_and_is_reported(make_spec):
    spec = make_spec(["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"],
                     resources=Resources(memory_bytes=32 * 1024 * 1024))
    final = run_to_exit(spec)
    assert final.cgroup_warning is None
    assert final.exit_code == 137
    assert final.oom_killed is True


def test_within_the_memory_limit_nothing_is_killed(make_spec):
    spec = make_spec(["dd", "if=/dev/zero", "of=/dev/null", "bs=1M", "count=1"],
                     resources=Resources(memory_bytes=32 * 1024 * 1024))
    final = run_to_exit(spec)
    assert (final.exit_code, final.oom_killed) == (0, False)


def test_cpu_quota_throttles(make_spec):
    spec = make_spec(["sh", "-c", "echo spinning; while :; do :; done"],
                     resources=Resources(cpus=0.1))
    current = api.start(spec)
    wait_for_log(spec, "spinning")
    record = current.cgroups
    if record["mode"] == "v2":
        assert open(cgroups.path_of(record, "cpu") + "/cpu.max").read().split() == ["10000",
                                                                                      "100000"]
        time_key = "throttled_usec"
    else:
        assert open(cgroups.path_of(record, "cpu") + "/cpu.cfs_quota_us").read().strip() == \
            "10000"
        time_key = "throttled_time"
    stats = _poll(lambda: (s := cgroups.stat(record, "cpu", "cpu.stat"))["nr_throttled"] >= 3
                  and s)
    assert stats, "the spinning container was never throttled"
    assert stats[time_key] > 0
    api.stop(spec.state_dir, grace_seconds=0)


def test_pids_limit_refuses_forks(make_spec):
    # busybox sh gives up at the first fork the pids controller refuses
    spec = make_spec(["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 600 & done; "
                                  "echo all-forked"],
                     resources=Resources(pids_limit=5))
    final = run_to_exit(spec)
    output = read_log(spec)
    assert "can't fork" in output and "all-forked" not in output
    assert final.exit_code != 0
    assert cgroups.stat(final.cgroups, "pids", "pids.events")["max"] > 0


def test_no_limits_requested_still_gets_its_own_cgroup(make_spec):
    spec = make_spec(["true"])
    final = run_to_exit(spec)
    assert final.cgroup_warning is None
    memory_dir = cgroups.path_of(final.cgroups, "memory")
    assert memory_dir.endswith(f"/{spec.cgroup_parent}/{spec.id}")


@pytest.mark.parametrize("cpus, quota", [(0.5, 50000), (1.5, 150000)])
def test_cpu_quota_values(make_spec, cpus, quota):
    spec = make_spec(["true"], resources=Resources(cpus=cpus))
    final = run_to_exit(spec)
    if final.cgroups["mode"] == "v2":
        value = open(cgroups.path_of(final.cgroups, "cpu") + "/cpu.max").read().split()[0]
    else:
        value = open(cgroups.path_of(final.cgroups, "cpu") + "/cpu.cfs_quota_us").read().strip()
    assert int(value) == quota


READ_ONLY_CGROUPS_STARTER = READ_ONLY_CGROUPS_PREAMBLE + """
import json, sys
from provisioner.components.runtime.container import api
from provisioner.components.runtime.container.spec import ContainerSpec
spec = ContainerSpec.from_dict(json.loads(sys.argv[1]))
api.start(spec)
final = api.wait(spec.state_dir, 30)
print(json.dumps({"exit_code": final.exit_code, "warning": final.cgroup_warning,
                  "cgroups": final.cgroups}))
"""


def test_without_writable_cgroups_the_container_runs_and_says_limits_are_not_applied(make_spec):
    spec = make_spec(["sh", "-c", "echo ran"], resources=Resources(memory_bytes=64 << 20))
    result = subprocess.run([sys.executable, "-c", READ_ONLY_CGROUPS_STARTER,
                             json.dumps(spec.to_dict())], capture_output=True, text=True,
                            check=True)
    outcome = json.loads(result.stdout)
    assert outcome["exit_code"] == 0 and read_log(spec) == "ran"
    assert outcome["cgroups"] is None
    assert "Read-only file system" in outcome["warning"]
    assert f"limits are not applied to container {spec.id}" in outcome["warning"]
    with open(f"{spec.state_dir}/shim.log") as f:
        assert outcome["warning"] in f.read()


@pytest.mark.parametrize("resources, refused", [
    (Resources(cpus=0.001), r"cpu limit 0\.001 cpus \('100' written to .*cpu\.cfs_quota_us: "
                            r"Invalid argument\)"),
    (Resources(memory_bytes=64 << 20, pids_limit=-5),
     r"pids limit -5 \('-5' written to .*pids\.max: Invalid argument\)"),
])
def test_a_limit_the_kernel_refuses_fails_the_start_and_leaves_nothing(make_spec, resources,
                                                                       refused):
    spec = make_spec(["sh", "-c", "echo ran"], resources=resources)

    with pytest.raises(ContainerError, match=f"container {spec.id} failed to start: the kernel "
                                             f"refused the {refused}; choose another value"):
        api.start(spec)

    assert os.listdir(spec.state_dir) == []
    leftovers = [os.path.join(base, spec.cgroup_parent, spec.id)
                 for base in ["/sys/fs/cgroup", *glob.glob("/sys/fs/cgroup/*")]]
    assert [path for path in leftovers if os.path.exists(path)] == []
