"""Resource limits through real cgroups: memory (OOM kill reported), CPU quota (throttling seen
in cpu.stat), pids."""

import time

import pytest

from provisioner.components.runtime.container import api, cgroups
from provisioner.components.runtime.container.spec import Resources

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
