"""netagent/masquerade: pod traffic leaving the cluster CIDR is masqueraded (pods reach the
outside with their node's address); pod-to-pod traffic is never NATed. One chain, jumped to from
nat POSTROUTING, rewritten whole with iptables-restore."""

from __future__ import annotations

import subprocess

CHAIN = "PROVISIONER-NETAGENT-MASQ"
JUMP = ["-m", "comment", "--comment", "provisioner network agent: masquerade pods to outside",
        "-j", CHAIN]


def ensure(cluster_cidr: str) -> None:
    payload = "\n".join([
        "*nat", f":{CHAIN} - [0:0]",
        f"-A {CHAIN} -d {cluster_cidr} -j RETURN",
        f"-A {CHAIN} -d 224.0.0.0/4 -j RETURN",
        f"-A {CHAIN} -s {cluster_cidr} -j MASQUERADE --random-fully",
        "COMMIT", ""])
    done = subprocess.run(["iptables-restore", "-w", "5", "--noflush"], input=payload, text=True,
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise OSError(f"iptables-restore: {done.stderr.strip()}")
    check = subprocess.run(["iptables", "-w", "5", "-t", "nat", "-C", "POSTROUTING", *JUMP],
                           capture_output=True, check=False)
    if check.returncode != 0:
        subprocess.run(["iptables", "-w", "5", "-t", "nat", "-A", "POSTROUTING", *JUMP],
                       capture_output=True, check=True)
