"""Shell commands the etcd phase runs on hosts carry spec values as single, quoted words."""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
from pathlib import Path

from provisioner.phases.etcd import ETCDCTL_BINARY, etcdctl, has_data_command
from provisioner.spec import EtcdSettings

from .test_etcd_templates import _spec


def test_etcdctl_words_stay_whole():
    spec = _spec()
    command = etcdctl(spec, "member", "add", "cp4;touch /tmp/pwned", "--peer-urls=https://a b")
    assert command.startswith("ETCDCTL_API=3 ")
    assert shlex.split(command.removeprefix("ETCDCTL_API=3 ")) == [
        ETCDCTL_BINARY, "--endpoints=https://127.0.0.1:2379",
        "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
        "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
        "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key",
        "--command-timeout=10s", "member", "add", "cp4;touch /tmp/pwned",
        "--peer-urls=https://a b"]


def run_has_data(data_dir: Path, cwd: Path) -> str:
    spec = dataclasses.replace(_spec(), etcd=EtcdSettings(data_dir=str(data_dir)))
    return subprocess.run(["sh", "-c", has_data_command(spec)], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


def test_data_probe_quotes_the_data_dir(tmp_path):
    data_dir = tmp_path / "etcd data;touch pwned"
    assert run_has_data(data_dir, tmp_path) == "no\n"
    (data_dir / "member").mkdir(parents=True)
    assert run_has_data(data_dir, tmp_path) == "yes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["etcd data;touch pwned"]
