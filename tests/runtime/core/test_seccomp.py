"""The seccomp filter in real containers: the default profile on by default (Seccomp: 2), a
refused call failing with EPERM and working when unconfined, capability-conditional calls,
custom profiles, exec'd processes, and malformed profiles refused before anything starts."""

import io
import os

import pytest

from provisioner.components.runtime.container import api
from provisioner.components.runtime.container.errors import ContainerError
from provisioner.components.runtime.container.spec import Process

from .conftest import read_log, run_to_exit, wait_for_log

STATUS = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"
# unshare(CLONE_NEWUSER) needs no capability, so only a seccomp filter refuses it here
NEW_USER_NAMESPACE = "unshare -U true && echo made-userns"


def run(make_spec, script: str, **fields) -> tuple[int, str]:
    spec = make_spec(["sh", "-c", script], **fields)
    final = run_to_exit(spec)
    return final.exit_code, read_log(spec)


def test_every_container_gets_the_default_filter(make_spec):
    code, output = run(make_spec, STATUS)
    assert code == 0
    assert "Seccomp:\t2" in output


def test_a_refused_call_fails_with_eperm_and_the_process_lives_on(make_spec):
    code, output = run(make_spec, f"{NEW_USER_NAMESPACE}; echo still-here")
    assert "Operation not permitted" in output
    assert "made-userns" not in output
    assert "still-here" in output and code == 0


def test_unconfined_has_no_filter_and_the_same_call_works(make_spec):
    spec = make_spec(["sh", "-c", f"{STATUS}; {NEW_USER_NAMESPACE}"])
    spec.process.seccomp = "unconfined"
    final = run_to_exit(spec)
    output = read_log(spec)
    assert "Seccomp:\t0" in output
    assert "made-userns" in output and final.exit_code == 0


def test_calls_tied_to_a_capability_are_allowed_with_it(make_spec):
    code, output = run(make_spec, NEW_USER_NAMESPACE,
                       capabilities=["SYS_ADMIN", "SETUID", "SETGID", "SETPCAP"])
    assert "made-userns" in output and code == 0


def test_without_no_new_privs_the_filter_is_still_loaded(make_spec):
    spec = make_spec(["sh", "-c", STATUS])
    spec.process.no_new_privileges = False
    run_to_exit(spec)
    output = read_log(spec)
    assert "Seccomp:\t2" in output and "NoNewPrivs:\t0" in output


CUSTOM = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
          "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                        "errnoRet": 13}]}


def test_a_custom_profile_applies(make_spec):
    spec = make_spec(["sh", "-c", f"{STATUS}; mkdir /tmp/denied; {NEW_USER_NAMESPACE}"])
    spec.process.seccomp = CUSTOM
    run_to_exit(spec)
    output = read_log(spec)
    assert "Seccomp:\t2" in output
    assert "Permission denied" in output             # errnoRet 13 = EACCES
    assert "made-userns" in output                   # everything else allowed


def test_an_exec_in_the_container_gets_its_filter(make_spec):
    spec = make_spec(["sh", "-c", "echo up; sleep 300"])
    api.start(spec)
    wait_for_log(spec, "up")
    out, err = io.BytesIO(), io.BytesIO()
    code = api.exec_process(spec.state_dir, Process(args=["sh", "-c", NEW_USER_NAMESPACE],
                                                    env=["PATH=/bin"]), out, err)
    assert code != 0
    assert b"Operation not permitted" in out.getvalue() + err.getvalue()


@pytest.mark.parametrize("profile, message", [
    ({"defaultAction": "SCMP_ACT_BOGUS"}, "defaultAction 'SCMP_ACT_BOGUS' is not an action"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]},
     "syscalls[0].action None is not an action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "syscalls[0].args[0].index must be 0 to 5"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]},
     "unknown architecture 'SCMP_ARCH_VAX'"),
    ("strict", "invalid seccomp setting 'strict'"),
])
def test_a_malformed_profile_is_refused_and_nothing_starts(make_spec, profile, message):
    spec = make_spec(["sh", "-c", "echo should-not-run"])
    spec.process.seccomp = profile
    with pytest.raises(ContainerError) as error:
        api.start(spec)
    assert message in str(error.value)
    assert not os.path.exists(os.path.join(spec.state_dir, "state.json"))
