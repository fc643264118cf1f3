"""runtime/images: the components image, built on a host from the virtualenv it already has.

Static pods and add-ons (kube-apiserver, kube-scheduler, kube-controller-manager, kube-proxy, the
network agent, cluster DNS) run from `provisioner/components:<version>`: the offline `python:3.11`
image plus one layer holding this project's virtualenv at the same path as on the host
(/opt/provisioner/venv, installed there from the operator's wheelhouse), the shared libraries its
extension modules need beyond the base image, and the host's iptables tools (kube-proxy and the
network agent program the host's tables with the same backend as the host).

Hosts never need a registry: the install phase runs `python -m
provisioner.components.runtime.images.component` on each host. The image records a fingerprint of
the virtualenv (its distributions and their versions) as a label, so a second run with an
unchanged virtualenv does nothing.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil

from . import elf
from .bootstrap import (
    EPOCH,
    PATH_ENV,
    copy_file,
    ensure_bootstrap_images,
    existing_image,
    layer_from_tree,
    staging,
)
from .errors import ImageError
from .store import Image, ImageStore

REPOSITORY = "provisioner/components"
FINGERPRINT_LABEL = "dev.provisioner.venv-fingerprint"
# Programs components exec on the host's network: kube-proxy and the network agent.
HOST_TOOLS = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save",
              "ip6tables-restore")
HOST_TOOL_DIRS = ("/usr/sbin", "/sbin")
XTABLES_PLUGIN_DIRS = ("/usr/lib/x86_64-linux-gnu/xtables", "/usr/lib/aarch64-linux-gnu/xtables")


def venv_fingerprint(venv: str) -> str:
    """A digest of the distributions installed in `venv` (names and versions from dist-info)."""
    entries = sorted(os.path.basename(path) for path in
                     glob.glob(os.path.join(venv, "lib", "python3*", "site-packages", "*.dist-info")))
    if not entries:
        raise ImageError(f"{venv} holds no installed distributions; is it a virtualenv?")
    return "sha256:" + hashlib.sha256("\n".join(entries).encode()).hexdigest()


def ensure_component_image(store: ImageStore, venv: str, tag: str) -> tuple[Image, bool]:
    """(image, changed): the tag built from `venv` unless it already holds the same venv."""
    if not os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
        raise ImageError(f"{venv} is not a virtualenv (no pyvenv.cfg)")
    fingerprint = venv_fingerprint(venv)
    current = existing_image(store, tag)
    if current is not None and _labels(current).get(FINGERPRINT_LABEL) == fingerprint:
        return current, False
    python = next(image for image in ensure_bootstrap_images(store) if "python:3.11" in image.tags)
    with staging(store) as tree:
        component_layer(tree, venv, base_dirs=store.layer_dirs(python))
        layer = layer_from_tree(store, tree)
    env = [f"PATH={venv}/bin:" + PATH_ENV.split("=", 1)[1], "LANG=C.UTF-8",
           "PYTHONDONTWRITEBYTECODE=1", f"VIRTUAL_ENV={venv}"]
    config = {"created": EPOCH,
              "config": {"Env": env, "Cmd": ["kube-apiserver", "--help"],
                         "Labels": {FINGERPRINT_LABEL: fingerprint}},
              "history": [{"created": EPOCH,
                           "created_by": f"provisioner components: the virtualenv {venv}"}]}
    return store.commit(config, list(python.layers) + [layer], [tag]), True


def component_layer(tree: str, venv: str, base_dirs: list[str]) -> None:
    """The virtualenv, the libraries its extension modules need, and the host's iptables."""
    target = os.path.join(tree, venv.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copytree(venv, target, symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    binaries = [path for path in glob.glob(os.path.join(venv, "lib", "python3*", "site-packages",
                                                        "**", "*.so*"), recursive=True)
                if os.path.isfile(path) and _is_elf(path)]
    for tool in HOST_TOOLS:
        found = _host_tool(tool)
        if found is None:
            continue
        real = os.path.realpath(found)
        if not os.path.exists(os.path.join(tree, real.lstrip("/"))):
            copy_file(real, tree, real)
            binaries.append(real)
        link = os.path.join(tree, "usr/sbin", tool)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if not os.path.lexists(link):
            os.symlink(real, link)
    for plugin_dir in XTABLES_PLUGIN_DIRS:
        for plugin in glob.glob(os.path.join(plugin_dir, "*.so")):
            copy_file(plugin, tree, plugin)
            binaries.append(plugin)
    for image_path, host_path in sorted(elf.library_closure(binaries).items()):
        relative = image_path.lstrip("/")
        if image_path.startswith(venv + "/") or any(
                os.path.lexists(os.path.join(base, relative)) for base in base_dirs):
            continue
        if not os.path.exists(os.path.join(tree, image_path.lstrip("/"))):
            copy_file(host_path, tree, image_path)


def _host_tool(name: str) -> str | None:
    for directory in HOST_TOOL_DIRS:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    return None


def _is_elf(path: str) -> bool:
    with open(path, "rb") as file:
        return file.read(4) == b"\x7fELF"


def _labels(image: Image) -> dict:
    return (image.config.get("config") or {}).get("Labels") or {}


def main(argv: list[str] | None = None) -> int:
    """`python -m provisioner.components.runtime.images.component [--root DIR] [--venv V] [--tag T]`."""
    import argparse
    import sys

    from ..paths import DEFAULT_ROOT

    parser = argparse.ArgumentParser(description="Build the components image from a virtualenv.")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="runtime root (default %(default)s)")
    parser.add_argument("--venv", default=sys.prefix, help="the virtualenv (default: this one)")
    parser.add_argument("--tag", required=True, help=f"image tag, e.g. {REPOSITORY}:0.1.0")
    options = parser.parse_args(argv)
    try:
        image, changed = ensure_component_image(ImageStore(options.root), options.venv,
                                                 options.tag)
    except (ImageError, OSError) as error:
        print(f"components image: {error}", file=sys.stderr)
        return 1
    print(f"{'built' if changed else 'unchanged'} {options.tag} {image.id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
