"""The runtime's state is root's alone on the host, and containers of any user still run from it."""

from __future__ import annotations

import os
import stat


def test_root_and_image_store_are_private_to_root(daemon):
    for path in (daemon.root, os.path.join(daemon.root, "images")):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path


def test_a_non_root_container_user_reads_its_image_from_the_private_store(daemon):
    result = daemon.cli("run", "--rm", "-u", "nobody", "busybox", "sh", "-c",
                        "id -un; head -1 /etc/passwd")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["nobody", "root:x:0:0:root:/root:/bin/sh"]
