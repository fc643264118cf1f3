"""Static provisioning: claims bound to the smallest volume that fits, volumes released when
their claim goes."""

from __future__ import annotations

import json
import os

from .conftest import eventually


def volume(kubectl, name: str, size: str, cls: str) -> None:
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
        "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                 "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": f"/tmp/{name}"}}}))


def claim(kubectl, ns: str, name: str, size: str, cls: str) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                 "resources": {"requests": {"storage": size}}}}))


def test_claims_bind_to_the_smallest_fitting_volume_and_release(kubectl, ns):
    cls = f"manual-{os.urandom(2).hex()}"
    volume(kubectl, f"{cls}-big", "5Gi", cls)
    volume(kubectl, f"{cls}-small", "1Gi", cls)
    claim(kubectl, ns, "a", "500Mi", cls)

    def bound(name: str):
        c = kubectl.json("get", "pvc", name, "-n", ns)
        return c if c.get("status", {}).get("phase") == "Bound" else None
    a = eventually(lambda: bound("a"), what="claim a bound")
    assert a["spec"]["volumeName"] == f"{cls}-small" and a["status"]["capacity"] == {"storage": "1Gi"}
    claim(kubectl, ns, "b", "2Gi", cls)
    assert eventually(lambda: bound("b"), what="claim b bound")["spec"]["volumeName"] == f"{cls}-big"
    pv = kubectl.json("get", "pv", f"{cls}-big")
    assert pv["status"]["phase"] == "Bound" and pv["spec"]["claimRef"]["name"] == "b"
    claim(kubectl, ns, "c", "1Gi", cls)  # nothing left: stays Pending
    kubectl("delete", "pvc", "b", "-n", ns)
    eventually(lambda: kubectl.json("get", "pv", f"{cls}-big")["status"]["phase"] == "Released",
               what="the volume released (Retain)")
    assert kubectl.json("get", "pvc", "c", "-n", ns).get("status", {}).get("phase", "Pending") == "Pending"
    for v in ("big", "small"):
        kubectl("delete", "pv", f"{cls}-{v}", "--wait=false")
