"""The `files in place` smoke test: a real shell's stat output judged against a host's share."""

from __future__ import annotations

import subprocess

from provisioner.phases.owned import HostFile, HostShare, Unit
from provisioner.verify.files import expected_modes, judge, stat_command


def test_missing_paths_and_wrong_modes_are_each_named(tmp_path):
    key, conf, data = tmp_path / "server key", tmp_path / "etcd.env", tmp_path / "data"
    key.write_text("k")
    key.chmod(0o644)
    data.mkdir()
    share = HostShare(files=(HostFile(str(key), "600", True), HostFile(str(conf), "600", False)),
                      units=(Unit("etcd.service"),), data_dirs=(str(data),))
    wanted = expected_modes(share)
    wanted.pop("/etc/systemd/system/etcd.service")
    output = subprocess.run(["sh", "-c", stat_command(list(wanted))], capture_output=True,
                            text=True, check=True).stdout

    result = judge("cp1", wanted, output)

    assert not result.ok
    assert result.detail == f"missing {conf}; {key} is 644, not 600"

    key.chmod(0o600)
    conf.write_text("x")
    conf.chmod(0o600)
    output = subprocess.run(["sh", "-c", stat_command(list(wanted))], capture_output=True,
                            text=True, check=True).stdout
    assert judge("cp1", wanted, output).ok
