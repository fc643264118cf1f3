"""Container hardening through the daemon and the CLI, as Docker spells it: the default seccomp
profile, --security-opt seccomp=unconfined|PROFILE.json and no-new-privileges, --cap-add and
--cap-drop, --read-only, --user, --privileged; `inspect` shows what applied; malformed profiles
are refused at create with the problem named, and no container is made."""

from __future__ import annotations

import json

import pytest

from provisioner.components.runtime.client import RuntimeAPIError

USERNS = "unshare -U true && echo made-userns; grep Seccomp: /proc/self/status"
PROFILE = {"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                         "errnoRet": 13}]}


def run(daemon, *args: str):
    return daemon.cli("run", "--rm", "--network", "none", *args)


def test_the_default_profile_applies_and_refuses_with_eperm(daemon):
    result = run(daemon, "busybox", "sh", "-c", USERNS)
    assert result.returncode == 0, result.stderr
    assert "Seccomp:\t2" in result.stdout
    assert "Operation not permitted" in result.stdout + result.stderr
    assert "made-userns" not in result.stdout


def test_seccomp_unconfined_lets_the_same_call_through(daemon):
    result = run(daemon, "--security-opt", "seccomp=unconfined", "busybox", "sh", "-c", USERNS)
    assert result.returncode == 0, result.stderr
    assert "made-userns" in result.stdout and "Seccomp:\t0" in result.stdout


def test_a_profile_file_applies_and_inspect_shows_it(daemon, tmp_path, remove_after):
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(PROFILE))
    result = daemon.cli("run", "-d", "--name", "sec-custom", "--security-opt",
                        f"seccomp={path}", "busybox", "sleep", "3600")
    assert result.returncode == 0, result.stderr
    remove_after.append("sec-custom")
    code, output = daemon.client.exec_collect("sec-custom", ["sh", "-c", "mkdir /made; " + USERNS])
    assert b"Permission denied" in output and b"made-userns" in output
    details = daemon.inspect("sec-custom")
    assert "seccomp=custom" in details["HostConfig"]["SecurityOpt"]
    assert details["SeccompProfile"] == PROFILE


@pytest.mark.parametrize("profile, message", [
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], '
     '"action": "SCMP_ACT_NOPE"}]}', "syscalls[0].action 'SCMP_ACT_NOPE' is not an action"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": "read"}', "syscalls must be a list"),
    ('{"defaultAction": ', "the profile is not JSON"),
])
def test_a_malformed_profile_is_refused_and_no_container_is_made(daemon, tmp_path, profile,
                                                                 message):
    path = tmp_path / "bad.json"
    path.write_text(profile)
    before = daemon.container_dirs()
    result = daemon.cli("run", "--name", "sec-bad", "--security-opt", f"seccomp={path}",
                        "busybox", "echo", "ran")
    assert result.returncode == 125
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "ran" not in result.stdout
    assert daemon.container_dirs() == before


def test_the_api_refuses_a_malformed_profile_with_400(daemon):
    with pytest.raises(RuntimeAPIError) as error:
        daemon.client.create("busybox:latest", cmd=["true"],
                             seccomp={"defaultAction": "SCMP_ACT_ALLOW", "flags": ["NOPE"]})
    assert error.value.status == 400
    assert "flags: unknown flag 'NOPE'" in str(error.value)


def test_a_localhost_profile_is_read_from_the_host(daemon, tmp_path, remove_after):
    path = tmp_path / "localhost.json"
    path.write_text(json.dumps(PROFILE))
    container = daemon.client.create("busybox:latest", cmd=["sh", "-c", "mkdir /x"],
                                     network="none", seccomp=f"localhost/{path}")
    remove_after.append(container)
    daemon.client.start(container)
    assert daemon.client.wait(container)["exit_code"] != 0
    assert daemon.inspect(container)["SeccompProfile"] == PROFILE


def test_hardening_flags_apply_and_inspect_shows_them(daemon, remove_after):
    result = daemon.cli("run", "-d", "--name", "sec-flags", "--network", "none", "--read-only",
                        "--user", "65534:65534", "--cap-drop", "ALL", "--cap-add", "NET_RAW",
                        "--security-opt", "no-new-privileges=false", "busybox", "sleep", "3600")
    assert result.returncode == 0, result.stderr
    remove_after.append("sec-flags")
    code, output = daemon.client.exec_collect("sec-flags", [
        "sh", "-c", "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; "
                    "touch /x 2>&1; true"])
    text = output.decode()
    assert text.startswith("65534\n")
    assert "NoNewPrivs:\t0" in text and "Seccomp:\t2" in text
    assert "CapEff:\t0000000000002000" in text          # NET_RAW alone (bit 13)
    assert "Read-only file system" in text
    host_config = daemon.inspect("sec-flags")["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["SecurityOpt"] == ["seccomp=runtime/default"]
    assert host_config["Capabilities"] == ["CAP_NET_RAW"]


def test_privileged_runs_unconfined_as_docker_does(daemon):
    result = run(daemon, "--privileged", "busybox", "grep", "Seccomp:", "/proc/self/status")
    assert result.returncode == 0, result.stderr
    assert "Seccomp:\t0" in result.stdout


def test_an_unknown_security_opt_is_refused(daemon):
    result = run(daemon, "--security-opt", "apparmor=foo", "busybox", "true")
    assert result.returncode == 125
    assert "invalid --security-opt 'apparmor=foo'" in result.stderr


def test_userns_private_makes_root_an_unprivileged_host_range(daemon, remove_after, tmp_path):
    (tmp_path / "volume").mkdir()
    result = daemon.cli("run", "-d", "--name", "sec-userns", "--network", "none", "--userns",
                        "private", "-v", f"{tmp_path / 'volume'}:/data", "busybox", "sh", "-c",
                        "echo x > /f; sleep 3600")
    assert result.returncode == 0, result.stderr
    remove_after.append("sec-userns")
    details = daemon.inspect("sec-userns")
    mapping = details["HostConfig"]["IdMappings"]
    assert details["HostConfig"]["UsernsMode"] == "private"
    assert mapping["host_uid"] >= 1 << 20 and mapping["size"] == 65536
    code, output = daemon.client.exec_collect("sec-userns", ["sh", "-c",
                                                             "id -u; cat /proc/self/uid_map"])
    assert code == 0
    assert output.decode().split() == ["0", "0", str(mapping["host_uid"]), "65536"]
    with open(f"/proc/{details['State']['Pid']}/status") as status:
        uids = next(line.split()[1:] for line in status if line.startswith("Uid:"))
    assert set(uids) == {str(mapping["host_uid"])}     # not root on the host
    # volumes are idmapped: root's files in the container are root's on the host
    assert daemon.client.exec_collect("sec-userns", ["sh", "-c", "echo y > /data/mine"])[0] == 0
    assert (tmp_path / "volume" / "mine").stat().st_uid == 0


def test_containers_of_a_pod_share_its_id_block(daemon, remove_after):
    pod = daemon.client.create_pod("sec-userns-pod", namespace="tests", uid="uid-sec-userns")
    try:
        first, second = (daemon.client.create("busybox:latest", cmd=["true"], pod=pod["id"],
                                               name=name, userns="private")
                         for name in ("sec-pod-a", "sec-pod-b"))
        alone = daemon.client.create("busybox:latest", cmd=["true"], network="none",
                                     userns="private")
        remove_after.append(alone)
        mappings = [daemon.inspect(c)["HostConfig"]["IdMappings"] for c in (first, second, alone)]
        assert mappings[0] == mappings[1]
        assert mappings[2]["host_uid"] != mappings[0]["host_uid"]
    finally:
        daemon.client.remove_pod(pod["id"])


def test_an_unknown_userns_mode_is_refused(daemon):
    with pytest.raises(RuntimeAPIError) as error:
        daemon.client.create("busybox:latest", cmd=["true"], userns="remap")
    assert error.value.status == 400 and "invalid userns 'remap'" in str(error.value)


def test_namespaced_sysctls_apply_and_others_are_refused(daemon):
    result = run(daemon, "--sysctl", "net.ipv4.ip_unprivileged_port_start=0", "--sysctl",
                 "kernel/shmmni=1234", "busybox", "cat",
                 "/proc/sys/net/ipv4/ip_unprivileged_port_start", "/proc/sys/kernel/shmmni")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1234"]
    refused = run(daemon, "--sysctl", "vm.swappiness=10", "busybox", "true")
    assert refused.returncode == 125 and "invalid sysctl 'vm.swappiness': not namespaced" \
        in refused.stderr
    with pytest.raises(RuntimeAPIError) as error:
        daemon.client.create("busybox:latest", cmd=["true"], network="host",
                             sysctls={"net.ipv4.ip_forward": "1"})
    assert error.value.status == 400 and "--network host" in str(error.value)


@pytest.mark.parametrize("proc_mount, expected", [(None, "masked"), ("Unmasked", "visible")])
def test_proc_mount_unmasked_shows_the_masked_paths(daemon, remove_after, proc_mount, expected):
    container = daemon.client.create(
        "busybox:latest", network="none", proc_mount=proc_mount,
        cmd=["sh", "-c", "if grep -q ' /proc/timer_list ' /proc/self/mounts; then echo masked; "
                         "else echo visible; fi"])
    remove_after.append(container)
    daemon.client.start(container)
    assert daemon.client.wait(container)["exit_code"] == 0
    assert daemon.cli("logs", container).stdout.strip() == expected
    assert daemon.inspect(container)["HostConfig"]["ProcMount"] == (proc_mount or "Default")
