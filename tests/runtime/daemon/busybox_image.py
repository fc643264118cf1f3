"""tests/runtime/daemon: a busybox image from Debian's busybox-static, for a fresh test store.

Used when the images part's bootstrap images are not importable; the layer is made the way a
`docker import` of a busybox root would be: the binary, its applet links, /etc/passwd and /tmp.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile

BUSYBOX = "/bin/busybox"


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    entry = tarfile.TarInfo(name)
    entry.size, entry.mode = len(data), mode
    archive.addfile(entry, io.BytesIO(data))


def _add_dir(archive: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    entry = tarfile.TarInfo(name)
    entry.type, entry.mode = tarfile.DIRTYPE, mode
    archive.addfile(entry)


def make_busybox_image(store, tags=("busybox:latest",)):
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    with tempfile.TemporaryDirectory() as work:
        layer_path = os.path.join(work, "layer.tar")
        with tarfile.open(layer_path, "w") as archive:
            for directory in ("bin", "etc", "root", "var", "var/www", "usr", "usr/bin"):
                _add_dir(archive, directory)
            _add_dir(archive, "tmp", 0o1777)
            archive.add(BUSYBOX, arcname="bin/busybox")
            for applet in applets:
                if applet == "busybox":
                    continue
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                archive.addfile(link)
            _add_bytes(archive, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                                              b"nobody:x:65534:65534:nobody:/:/bin/false\n")
            _add_bytes(archive, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        layer = store.add_layer(layer_path)
    config = {"config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                         "Cmd": ["sh"]}}
    return store.commit(config, [layer], list(tags))
