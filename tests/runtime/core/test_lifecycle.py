"""Container lifecycle through the core api: exit codes, kill/stop, state kept in files, exec,
logs, delete, and bad input that fails cleanly."""

import io
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from provisioner.components.runtime.container import api
from provisioner.components.runtime.container.errors import ContainerError
from provisioner.components.runtime.container.spec import Mount, Process, Resources

from .conftest import CGROUP_PARENT, read_log, run_to_exit, wait_for_log

CRI_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (F|P) .*$")


def _host_mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def _cgroup_dirs(container_id: str) -> list[str]:
    found = []
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu",
                 "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpuset"):
        path = os.path.join(base, CGROUP_PARENT, container_id)
        if os.path.exists(path):
            found.append(path)
    return found


@pytest.mark.parametrize("script, code", [("exit 0", 0), ("exit 7", 7), ("exit 255", 255)])
def test_exit_codes_pass_through(make_spec, script, code):
    final = run_to_exit(make_spec(["sh", "-c", script]))
    assert final.exit_code == code
    assert final.finished_at and final.started_at <= final.finished_at
    assert final.oom_killed is False


def test_killed_by_a_signal_reports_128_plus_the_signal(make_spec):
    spec = make_spec(["sleep", "60"])
    assert api.start(spec).status == "running"
    api.kill(spec.state_dir, signal.SIGKILL)
    assert api.wait(spec.state_dir, 30).exit_code == 128 + signal.SIGKILL


def test_stop_lets_a_process_handling_term_exit_cleanly(make_spec):
    spec = make_spec(["sh", "-c", "trap 'echo bye; exit 3' TERM; echo ready; "
                                  "while :; do sleep 0.1; done"])
    api.start(spec)
    wait_for_log(spec, "ready")     # the trap is set
    final = api.stop(spec.state_dir, grace_seconds=30)
    assert final.status == "exited" and final.exit_code == 3


def test_stop_kills_a_process_that_ignores_term_after_the_grace_period(make_spec):
    # PID 1 without a TERM handler never sees TERM: only KILL ends it
    spec = make_spec(["sleep", "600"])
    api.start(spec)
    final = api.stop(spec.state_dir, grace_seconds=0.5)
    assert final.status == "exited" and final.exit_code == 128 + signal.SIGKILL


def test_container_outlives_the_process_that_started_it_and_state_is_in_files(make_spec):
    spec = make_spec(["sleep", "600"])
    starter = ("import sys, json\n"
               "from provisioner.components.runtime.container import api\n"
               "from provisioner.components.runtime.container.spec import ContainerSpec\n"
               "spec = ContainerSpec.from_dict(json.loads(sys.argv[1]))\n"
               "print(api.start(spec).pid)\n")
    started = subprocess.run([sys.executable, "-c", starter, json.dumps(spec.to_dict())],
                             check=True, capture_output=True, text=True, cwd="/work/main")
    pid = int(started.stdout)
    current = api.state(spec.state_dir)       # this process never held the container
    assert current.status == "running" and current.pid == pid
    reader = subprocess.run(
        [sys.executable, "-c", "import sys; from provisioner.components.runtime.container import"
         " api; s = api.state(sys.argv[1]); print(s.status, s.pid)", spec.state_dir],
        check=True, capture_output=True, text=True)
    assert reader.stdout.split() == ["running", str(pid)]
    assert api.stop(spec.state_dir, grace_seconds=0).status == "exited"


def test_exec_runs_inside_the_container_with_its_env_user_and_cwd(make_spec):
    spec = make_spec(["sleep", "600"], hostname="exec-box")
    api.start(spec)
    out, err = io.BytesIO(), io.BytesIO()
    code = api.exec_process(
        spec.state_dir,
        Process(args=["sh", "-c", "echo $FOO; hostname; echo $HOSTNAME; tr '\\0' ' ' < /proc/1/cmdline; echo; "
                                  "id -u; pwd; grep NoNewPrivs /proc/self/status; "
                                  f"grep -c /{spec.id}$ /proc/self/cgroup; echo oops >&2; exit 4"],
                env=["PATH=/bin", "FOO=bar"], user="nobody", cwd="/tmp"),
        out, err)
    assert code == 4
    assert out.getvalue().decode().splitlines() == [
        "bar", "exec-box", "exec-box", "sleep 600 ", "65534", "/tmp", "NoNewPrivs:\t1",
        str(len(set(api.state(spec.state_dir).cgroups["paths"])))]
    assert err.getvalue() == b"oops\n"


def test_exec_of_a_missing_executable_is_a_clear_error(make_spec):
    spec = make_spec(["sleep", "600"])
    api.start(spec)
    with pytest.raises(ContainerError, match="executable file not found in \\$PATH: nothere"):
        api.exec_process(spec.state_dir, Process(args=["nothere"]), io.BytesIO(), io.BytesIO())


def test_exec_in_an_exited_container_is_refused(make_spec):
    spec = make_spec(["true"])
    run_to_exit(spec)
    with pytest.raises(ContainerError, match="not running"):
        api.exec_process(spec.state_dir, Process(args=["true"]), io.BytesIO(), io.BytesIO())


def test_logs_are_cri_formatted_with_streams_and_partial_lines(make_spec):
    spec = make_spec(["sh", "-c", "echo out; echo err >&2; head -c 20000 /dev/zero | tr '\\0' a"])
    run_to_exit(spec)
    records = open(spec.log_path).read().splitlines()
    assert all(CRI_LINE.match(r) for r in records), records[:3]
    assert records[0].endswith(" stdout F out")
    assert any(r.endswith(" stderr F err") for r in records)
    long_parts = [r.split(" ", 3) for r in records if "aaa" in r]
    assert [part[2] for part in long_parts] == ["P", "F"]
    assert sum(len(part[3]) for part in long_parts) == 20000


def test_logs_rotate_by_size_keeping_one_file(make_spec):
    spec = make_spec(["sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done"],
                     log_max_bytes=4000)
    run_to_exit(spec)
    assert os.path.getsize(spec.log_path) <= 4000
    assert 3900 < os.path.getsize(spec.log_path + ".1") <= 4000
    assert read_log(spec).splitlines()[-1] == "line-299"
    assert not os.path.exists(spec.log_path + ".2")


def test_delete_leaves_no_mounts_cgroups_or_owned_files(make_spec):
    spec = make_spec(["sh", "-c", "echo x > /tmp/x"])
    final = run_to_exit(spec)
    paths = set(final.cgroups["paths"].values())
    assert all(os.path.isdir(p) for p in paths)
    with pytest.raises(ContainerError):     # only after stop
        running = make_spec(["sleep", "600"])
        api.start(running)
        api.delete(running.state_dir)
    api.delete(spec.state_dir)
    assert not any(os.path.exists(p) for p in paths)
    assert _host_mounts_under(spec.state_dir) == []
    assert sorted(os.listdir(spec.state_dir)) == ["container.log"]
    api.delete(spec.state_dir)      # idempotent


def test_missing_executable_fails_start_and_leaves_nothing(make_spec):
    spec = make_spec(["/bin/foo"])
    with pytest.raises(ContainerError, match=f"container {spec.id} .*executable file not "
                                             f"found: /bin/foo"):
        api.start(spec)
    assert os.listdir(spec.state_dir) == []
    assert _cgroup_dirs(spec.id) == []
    assert _host_mounts_under(spec.state_dir) == []


def test_missing_mount_source_fails_start_and_leaves_nothing(make_spec, tmp_path):
    missing = str(tmp_path / "no-such-dir")
    spec = make_spec(["true"], mounts=[Mount(missing, "/data")])
    with pytest.raises(ContainerError, match=f"mount source {missing} .*does not exist"):
        api.start(spec)
    assert os.listdir(spec.state_dir) == []
    assert _cgroup_dirs(spec.id) == []


def test_missing_lower_dir_fails_start_and_leaves_nothing(make_spec, tmp_path):
    missing = str(tmp_path / "layer-gone")
    spec = make_spec(["true"], lower_dirs=[missing])
    with pytest.raises(ContainerError, match=f"image layer directory {missing} does not exist"):
        api.start(spec)
    assert os.listdir(spec.state_dir) == []


def test_unknown_user_fails_start_with_the_name(make_spec):
    spec = make_spec(["true"], user="ghost")
    with pytest.raises(ContainerError, match="user 'ghost' not found in the container's "
                                             "/etc/passwd"):
        api.start(spec)
    assert os.listdir(spec.state_dir) == []
    assert _cgroup_dirs(spec.id) == []


def test_starting_an_exited_container_again_keeps_its_files_and_resets_oom(make_spec):
    spec = make_spec(["sh", "-c", "cat /tmp/mark 2>/dev/null || echo first > /tmp/mark; "
                                  "dd if=/dev/zero of=/dev/null bs=128M count=1"],
                     resources=Resources(memory_bytes=32 * 1024 * 1024))
    first = run_to_exit(spec)
    assert first.oom_killed is True
    spec.process.args = ["cat", "/tmp/mark"]
    second = run_to_exit(spec)
    assert (second.exit_code, second.oom_killed) == (0, False)
    assert read_log(spec).splitlines()[-1] == "first"


def test_starting_a_running_container_is_refused(make_spec):
    spec = make_spec(["sleep", "600"])
    api.start(spec)
    with pytest.raises(ContainerError, match=f"container {spec.id} is already running"):
        api.start(spec)
    assert api.state(spec.state_dir).status == "running"


def test_joining_another_containers_namespaces_and_the_host_network(make_spec):
    sandbox = make_spec(["sleep", "600"], hostname="pod-a")
    pid = api.start(sandbox).pid
    member = make_spec(["sh", "-c", "hostname; readlink /proc/self/ns/net"],
                       namespaces={"mount": None, "pid": None, "ipc": None,
                                   "uts": f"/proc/{pid}/ns/uts", "net": f"/proc/{pid}/ns/net"})
    run_to_exit(member)
    assert read_log(member).splitlines() == ["pod-a", os.readlink(f"/proc/{pid}/ns/net")]
    host_net = make_spec(["readlink", "/proc/self/ns/net"],
                         namespaces={"mount": None, "pid": None, "ipc": None, "uts": None})
    run_to_exit(host_net)
    assert read_log(host_net) == os.readlink("/proc/self/ns/net")


def test_unwritable_log_path_fails_start_and_leaves_nothing(make_spec, tmp_path):
    log_path = str(tmp_path / "no-such-dir" / "container.log")
    spec = make_spec(["true"], log_path=log_path)
    with pytest.raises(ContainerError, match=f"cannot open the log file {log_path}"):
        api.start(spec)
    assert os.listdir(spec.state_dir) == []
    assert _cgroup_dirs(spec.id) == []


def test_exec_gets_the_same_hostname_variable_as_the_container_process(make_spec):
    # the host's uts namespace is shared, so only the spec knows the container's hostname
    spec = make_spec(["sh", "-c", "echo $HOSTNAME; sleep 600"], hostname="shares-host-uts",
                     namespaces={"mount": None, "pid": None, "ipc": None})
    api.start(spec)
    wait_for_log(spec, "shares-host-uts")
    out = io.BytesIO()

    code = api.exec_process(spec.state_dir, Process(args=["sh", "-c", "echo $HOSTNAME"],
                                                    env=["PATH=/bin"]), out, io.BytesIO())

    assert code == 0 and out.getvalue() == b"shares-host-uts\n"
