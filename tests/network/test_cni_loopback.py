"""Debian's reference `loopback` plugin driven by the runtime's CNI executor (the same ADD, CHECK
and DEL a pod sandbox gets), in a real network namespace: ADD brings `lo` up with 127.0.0.1, the
result comes back and is cached for DEL, DEL takes `lo` down again. (The runtime also brings `lo`
up itself in every sandbox it makes, so this plugin is only needed where a network names it.)"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from provisioner.components.runtime.net.cni import CniPlugins, CniSettings

REFERENCE_PLUGINS = "/usr/lib/cni"


def lo_state(namespace: str) -> str:
    out = subprocess.run(["ip", "-n", namespace, "-o", "addr", "show", "dev", "lo"],
                         capture_output=True, text=True, check=True).stdout
    up = subprocess.run(["ip", "-n", namespace, "-o", "link", "show", "dev", "lo"],
                        capture_output=True, text=True, check=True).stdout
    return ("up" if ",UP" in up else "down") + (" 127.0.0.1" if "127.0.0.1/8" in out else "")


@pytest.fixture
def namespace():
    name = f"cnilo-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], check=False)


def test_the_reference_loopback_plugin_brings_lo_up_and_down(namespace, tmp_path):
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    (conf_dir / "99-loopback.conflist").write_text(json.dumps(
        {"cniVersion": "1.0.0", "name": "lo", "plugins": [{"type": "loopback"}]}))
    plugins = CniPlugins(CniSettings(conf_dir=str(conf_dir), bin_dirs=[REFERENCE_PLUGINS],
                                     cache_dir=str(tmp_path / "cache"), ifname="lo"))
    netns = f"/run/netns/{namespace}"
    assert lo_state(namespace) == "down"

    attachment = plugins.add("sandbox-1", netns)
    assert lo_state(namespace) == "up 127.0.0.1"
    assert any(ip["address"] == "127.0.0.1/8" for ip in attachment.result["ips"])
    assert plugins.cached("sandbox-1").result == attachment.result
    assert plugins.version("loopback")["cniVersion"]
    plugins.check("sandbox-1")

    plugins.delete("sandbox-1", netns)
    assert lo_state(namespace).startswith("down")  # the kernel keeps lo's address while down
    assert plugins.cached("sandbox-1") is None
    assert not os.listdir(tmp_path / "cache" / "results")
