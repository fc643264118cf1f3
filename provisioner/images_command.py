"""`provisioner images load -f cluster.yaml [--archive FILE]... [IMAGE]...`: images onto every node.

As `kind load docker-image` and `kind load image-archive`: nodes need no registry. IMAGE names an
image in this machine's container-runtime store (`--root`, default the runtime's own), saved to
one archive; `--archive` adds OCI or docker-save tarballs as they are. Each node that does not
hold an image yet receives the archive over SSH and loads it into its runtime; nodes that have
them all change nothing.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path

import click

from provisioner.cluster_commands import SPEC_OPTION, _context, _load
from provisioner.errors import InvalidInputError, ProvisionerError


def _archive_refs(path: Path) -> list[str]:
    """The tags an archive holds (OCI index annotations or docker-save's manifest.json)."""
    import tarfile

    try:
        with tarfile.open(path) as archive:
            names = set(archive.getnames())
            if "manifest.json" in names:
                manifest = json.load(archive.extractfile("manifest.json"))
                return [tag for entry in manifest for tag in entry.get("RepoTags") or []]
            if "index.json" in names:
                index = json.load(archive.extractfile("index.json"))
                return [m.get("annotations", {}).get("org.opencontainers.image.ref.name", "")
                        for m in index.get("manifests", [])]
    except (OSError, tarfile.TarError, ValueError) as error:
        raise InvalidInputError(f"--archive {path}: not an image archive ({error})") from None
    raise InvalidInputError(f"--archive {path}: neither an OCI layout nor a docker-save archive")


@click.group("images")
def images() -> None:
    """Images on the cluster's nodes."""


@images.command("load")
@SPEC_OPTION
@click.option("--archive", "archives", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An OCI or docker-save tarball (repeatable).")
@click.option("--root", default=None, help="This machine's runtime store to take IMAGEs from.")
@click.argument("refs", nargs=-1)
def load(spec_file: str, archives: tuple[Path, ...], root: str | None,
         refs: tuple[str, ...]) -> None:
    """Load IMAGEs (from this machine's runtime store) and archives onto every node."""
    from pyinfra.operations import files, server

    from provisioner.components.runtime.images import archive as image_archive
    from provisioner.components.runtime.images.errors import ImageError
    from provisioner.components.runtime.images.store import ImageStore
    from provisioner.components.runtime.paths import DEFAULT_ROOT
    from provisioner.phases.kubeconfig import node_hosts
    from provisioner.phases.owned import REMOTE_VENV
    from provisioner.phases.runtime import RUNTIME_SOCKET

    if not refs and not archives:
        raise click.UsageError("name at least one IMAGE or --archive FILE")
    spec = _load(spec_file)
    ctx = _context(spec)
    nodes = node_hosts(spec)
    if not nodes:
        raise InvalidInputError(f"{spec_file}: no host runs pods (control-plane or worker role)")
    with tempfile.TemporaryDirectory(prefix="provisioner-images-") as scratch:
        tarballs = list(archives)
        wanted = [r for path in archives for r in _archive_refs(path)]
        if refs:
            store_root = root or DEFAULT_ROOT
            if not os.path.isdir(store_root):
                raise InvalidInputError(f"--root {store_root}: no container-runtime store here; "
                                        "give --archive FILE instead")
            saved = Path(scratch) / "images.tar"
            try:
                image_archive.save_to_path(ImageStore(store_root), list(refs), str(saved))
            except ImageError as error:
                raise InvalidInputError(f"{error} (looked in {store_root})") from None
            tarballs.append(saved)
            wanted += list(refs)
        runtime = f"{REMOTE_VENV}/bin/provisioner-runtime --socket {RUNTIME_SOCKET}"
        probe = " && ".join(f"{runtime} inspect {shlex.quote(r)} >/dev/null 2>&1"
                            for r in wanted if r) or "false"
        with ctx.session(nodes) as session:
            present = session.run(f"({probe}) && echo present || echo missing")
            missing = [h for h in nodes if present[h.name].stdout.strip() != "present"]
            for host in missing:
                for number, path in enumerate(tarballs):
                    remote = f"/tmp/provisioner-images-{number}.tar"
                    session.op(host, f"copy {path.name}", files.put, src=str(path), dest=remote,
                               mode="600")
                    session.op(host, f"load {path.name}", server.shell,
                               commands=[f"{runtime} load -i {remote}; status=$?; "
                                         f"rm -f {remote}; exit $status"])
            changes = session.apply()
    for host in nodes:
        verb = "loaded" if host in missing else "already holds"
        click.echo(f"[images] {host.name}: {verb} {', '.join(wanted)}")
    if not changes.by_host and missing:
        raise ProvisionerError("the images were not loaded on " + ", ".join(h.name for h in missing))

