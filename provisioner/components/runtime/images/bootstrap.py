"""runtime/images: images a fresh machine has without any registry.

`busybox:latest` is Debian's static busybox (package busybox-static) with its applet symlinks,
/etc/passwd and /etc/group. `python:3.11` (also `python:latest`) adds, on top of that layer,
the host's Debian python3.11 (package python3-minimal / libpython3.11-stdlib): the binary, the
shared libraries it and its extension modules need (read from their ELF dynamic sections), and
the standard library minus test suites and bytecode caches. Enough for `python3 -m http.server`.

Layers are written with fixed timestamps and the configs with a fixed creation date, so the
same host files give the same digests on every machine. `ensure_bootstrap_images` is a no-op
when the tags exist.
"""

from __future__ import annotations

import glob
import os
import shutil
import stat
import subprocess
import tempfile

from . import elf
from .errors import ImageError
from .layers import diff_upper_dir
from .store import Image, ImageStore, Layer

BUSYBOX = "/bin/busybox"
PYTHON = "/usr/bin/python3.11"
PYTHON_STDLIB = "/usr/lib/python3.11"
EPOCH = "1970-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Large and never needed to run programs: test suites, caches, GUI and distutils-era leftovers.
STDLIB_SKIP = {"test", "tests", "__pycache__", "idle_test", "idlelib", "tkinter", "turtledemo",
               "ensurepip", "lib2to3", "site-packages", "dist-packages"}
DLOPENED_LIBRARIES = ("libgcc_s.so.1",)
PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"


def ensure_bootstrap_images(store: ImageStore) -> list[Image]:
    """busybox:latest and python:3.11/python:latest, built only when missing."""
    images = []
    busybox = existing_image(store, "busybox:latest")
    if busybox is None:
        busybox = _build_busybox(store)
    images.append(busybox)
    python = existing_image(store, "python:3.11")
    if python is None:
        python = _build_python(store, busybox)
    elif "python:latest" not in python.tags:
        store.tag(python, "python:latest")
        python = store.resolve("python:3.11")
    images.append(python)
    return images


def existing_image(store: ImageStore, tag: str) -> Image | None:
    return store.resolve(tag) if store.exists(tag) else None


def _build_busybox(store: ImageStore) -> Image:
    if not os.path.exists(BUSYBOX):
        raise ImageError(f"{BUSYBOX} is missing; install the Debian package busybox-static")
    with staging(store) as tree:
        busybox_layer(tree)
        layer = layer_from_tree(store, tree)
    return store.commit(_config(["sh"], [PATH_ENV], "busybox from Debian's busybox-static"),
                        [layer], ["busybox:latest"])


def busybox_layer(tree: str) -> None:
    """Write the busybox root filesystem into `tree`."""
    bin_dir = os.path.join(tree, "bin")
    os.makedirs(bin_dir)
    shutil.copyfile(BUSYBOX, os.path.join(bin_dir, "busybox"))
    os.chmod(os.path.join(bin_dir, "busybox"), 0o755)
    # One call at bootstrap time: the applet list is compiled into the binary.
    applets = subprocess.run([BUSYBOX, "--list-full"], check=True, capture_output=True,
                             text=True).stdout.split()
    for applet in applets:
        path = os.path.join(tree, applet)
        if os.path.basename(applet) == "busybox" or os.path.lexists(path):
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink("/bin/busybox", path)
    for directory, mode in (("etc", 0o755), ("root", 0o700), ("tmp", 0o1777), ("proc", 0o555),
                            ("sys", 0o555), ("dev", 0o755), ("var", 0o755), ("home", 0o755),
                            ("usr/local/bin", 0o755)):
        os.makedirs(os.path.join(tree, directory), exist_ok=True)
        os.chmod(os.path.join(tree, directory), mode)
    for name, content in (("passwd", PASSWD), ("group", GROUP)):
        with open(os.path.join(tree, "etc", name), "w") as out:
            out.write(content)
        os.chmod(os.path.join(tree, "etc", name), 0o644)


def _build_python(store: ImageStore, busybox: Image) -> Image:
    if not os.path.exists(PYTHON) or not os.path.isdir(PYTHON_STDLIB):
        raise ImageError(f"{PYTHON} or {PYTHON_STDLIB} is missing; install the Debian package "
                         "python3-minimal (and libpython3.11-stdlib)")
    with staging(store) as tree:
        python_layer(tree)
        layer = layer_from_tree(store, tree)
    config = _config(["python3"], [PATH_ENV, "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"],
                     "python3.11 from the host's Debian packages")
    return store.commit(config, list(busybox.layers) + [layer], ["python:3.11", "python:latest"])


def python_layer(tree: str) -> None:
    """Write python3.11, its libraries and its standard library into `tree`."""
    copy_file(PYTHON, tree, PYTHON)
    os.symlink("python3.11", os.path.join(tree, "usr", "bin", "python3"))
    os.symlink("python3.11", os.path.join(tree, "usr", "bin", "python"))
    stdlib_files = []
    for current, dirs, files in os.walk(PYTHON_STDLIB):
        dirs[:] = sorted(name for name in dirs if name not in STDLIB_SKIP)
        for name in sorted(files):
            source = os.path.join(current, name)
            if os.path.islink(source):
                target = os.path.join(tree, source.lstrip("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.symlink(os.readlink(source), target)
                continue
            copy_file(source, tree, source)
            stdlib_files.append(source)
    modules = glob.glob(os.path.join(PYTHON_STDLIB, "lib-dynload", "*.so"))
    # glibc dlopens libgcc_s for thread exit and cancellation; no DT_NEEDED names it.
    dlopened = [path for path in map(elf.find_library, DLOPENED_LIBRARIES) if path]
    closure = elf.library_closure([PYTHON] + modules + dlopened)
    closure.update({path: os.path.realpath(path) for path in dlopened})
    for image_path, host_path in sorted(closure.items()):
        copy_file(host_path, tree, image_path)
    # Debian's site.py reads this; keep the image's python as the host's.
    if os.path.exists("/etc/python3.11/sitecustomize.py"):
        copy_file("/etc/python3.11/sitecustomize.py", tree, "/etc/python3.11/sitecustomize.py")


def copy_file(source: str, tree: str, image_path: str) -> None:
    target = os.path.join(tree, image_path.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    for parent in _parents_below(tree, os.path.dirname(target)):
        os.chmod(parent, 0o755)
    shutil.copyfile(source, target)
    os.chmod(target, stat.S_IMODE(os.stat(source).st_mode))


def _parents_below(tree: str, directory: str) -> list[str]:
    result = []
    while directory.startswith(tree + os.sep):
        result.append(directory)
        directory = os.path.dirname(directory)
    return result


def layer_from_tree(store: ImageStore, tree: str) -> Layer:
    """A layer of `tree`'s files; `tree` itself becomes the layer's unpacked form, so the
    first container of the image does not unpack again what was just packed (for the
    components image, a virtualenv: seconds on a node's critical path)."""
    tar = tree + ".tar"
    try:
        diff_upper_dir(tree, tar)
        layer = store.add_layer(tar)
    finally:
        if os.path.exists(tar):
            os.unlink(tar)
    store.keep_unpacked(layer, tree)
    return layer


def _config(cmd: list[str], env: list[str], comment: str) -> dict:
    return {"created": EPOCH, "config": {"Cmd": cmd, "Env": env},
            "history": [{"created": EPOCH, "created_by": f"provisioner bootstrap: {comment}"}]}


class staging:
    """A temporary tree under the store (same filesystem), removed afterwards."""

    def __init__(self, store: ImageStore):
        self.path = tempfile.mkdtemp(dir=store.blobs.tmp_dir, prefix="bootstrap-")

    def __enter__(self) -> str:
        os.chmod(self.path, 0o755)
        return os.path.join(self.path, "tree")

    def __exit__(self, *exc_info) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m provisioner.components.runtime.images.bootstrap [--root DIR]` (for make)."""
    import argparse

    from ..paths import DEFAULT_ROOT

    parser = argparse.ArgumentParser(description="Add the offline busybox and python images.")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="runtime root (default %(default)s)")
    options = parser.parse_args(argv)
    try:
        images = ensure_bootstrap_images(ImageStore(options.root))
    except (ImageError, OSError) as error:
        print(f"bootstrap images: {error}")
        return 1
    for image in images:
        print(f"{', '.join(image.tags)}  {image.id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
