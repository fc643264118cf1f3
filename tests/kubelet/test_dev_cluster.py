"""`provisioner dev cluster`: a one-machine cluster a user drives with real kubectl (a
Deployment scheduled and running, `kubectl logs` and `kubectl exec` through the API server to
the kubelet), and that leaves nothing behind on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from .conftest import wait_for

KUBECTL = str(Path(sys.prefix) / "bin" / "kubectl")
PROVISIONER = str(Path(sys.prefix) / "bin" / "provisioner")


def test_dev_cluster_runs_workloads_and_cleans_up(tmp_path):
    directory = Path(f"/tmp/kubelet-dev-{uuid.uuid4().hex[:8]}")
    output = tmp_path / "dev.out"
    process = subprocess.Popen([PROVISIONER, "dev", "cluster", "--dir", str(directory),
                                # networking has its own test (test_dev_network.py) and
                                # allows one such cluster per machine
                                "--node-name", "dev-node", "--no-network"],
                               stdout=open(output, "w"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    env = dict(os.environ, KUBECONFIG=str(directory / "admin.conf"), HOME=str(tmp_path))

    def kubectl(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env,
                              timeout=60, input=input)
    try:
        wait_for(lambda: (directory / "admin.conf").exists() or process.poll() is not None, 120,
                 what="admin.conf")
        assert process.poll() is None, output.read_text()
        bridge = re.search(r"bridge (pdev\d+)", output.read_text()).group(1)
        assert kubectl("get", "node", "dev-node").returncode == 0
        assert kubectl("create", "deployment", "echo", "--image=busybox:latest", "--",
                       "sh", "-c", "echo ready-to-serve; exec sleep 3600").returncode == 0
        pod = wait_for(lambda: (r := kubectl("get", "pods", "-l", "app=echo", "-o",
                                             "jsonpath={.items[0].metadata.name} "
                                             "{.items[0].status.phase}")).stdout.endswith(
            " Running") and r.stdout.split()[0], 90, what="the Deployment's pod Running")
        logs = kubectl("logs", pod)
        assert logs.stdout == "ready-to-serve\n", logs.stderr
        describe = kubectl("describe", "pod", pod).stdout
        assert "Started container busybox" in describe and "QoS Class:" in describe
        exec_result = kubectl("exec", pod, "--", "sh", "-c", "echo from-exec; exit 3")
        assert exec_result.stdout == "from-exec\n"
        assert exec_result.returncode == 3
        copied = kubectl("cp", f"{pod}:/etc/hostname", str(tmp_path / "hostname"))
        assert copied.returncode == 0, (copied.stdout, copied.stderr)
        assert (tmp_path / "hostname").read_text().strip() == pod
        echoed = kubectl("exec", "-i", pod, "--", "cat", input="piped through stdin\n")
        assert (echoed.returncode, echoed.stdout) == (0, "piped through stdin\n"), echoed.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(120)
    text = output.read_text()
    assert "stopped the cluster" in text, text
    assert subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode != 0
    assert str(directory) not in subprocess.run(["mount"], capture_output=True,
                                                text=True).stdout
    leftovers = subprocess.run(["pgrep", "-f", str(directory)], capture_output=True, text=True)
    assert leftovers.stdout == ""
    slot = bridge.removeprefix("pdev")
    cgroup_tops = [Path("/sys/fs/cgroup"), *Path("/sys/fs/cgroup").iterdir()]
    assert not [top for top in cgroup_tops if (top / f"provisioner-dev-{slot}").exists()]
    assert bridge not in subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    subprocess.run(["rm", "-rf", str(directory)], check=False)
