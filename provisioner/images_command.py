"""`provisioner images load|push -f cluster.yaml ... IMAGE...`: the user's own images for pods.

`images load -f cluster.yaml [--archive FILE]... [IMAGE]...` puts images onto every node.

As `kind load docker-image` and `kind load image-archive`: nodes need no registry. IMAGE names an
image in this machine's container-runtime store (`--root`, default the runtime's own), saved to
one archive; `--archive` adds OCI or docker-save tarballs as they are. Each node that does not
hold an image yet receives the archive over SSH and loads it into its runtime; nodes that have
them all change nothing.

`images push -f cluster.yaml IMAGE...` pushes images from the same store to the cluster's
registry (provisioner.phases.registry) with the admin client certificate, under the name pods
use: `<address>:<port>/<name>:<tag>`, as kind's local registry is used.
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


def registry_name(endpoint: str, ref: str) -> str:
    """The name `ref` gets in the registry at `endpoint`: its repository (Docker Hub's
    `library/` dropped, any other registry's host replaced) and its tag."""
    from provisioner.components.runtime.images.errors import ImageError
    from provisioner.components.runtime.images.reference import DEFAULT_REGISTRY, parse_reference

    try:
        reference = parse_reference(ref)
    except ImageError as error:
        raise InvalidInputError(f"IMAGE {ref}: {error}") from None
    if reference.tag is None:
        raise InvalidInputError(f"IMAGE {ref}: push a name:tag, not a digest")
    repository = reference.repository
    if reference.registry == DEFAULT_REGISTRY and repository.startswith("library/"):
        repository = repository[len("library/"):]
    return f"{endpoint}/{repository}:{reference.tag}"


def admin_certs_dir(pki_dir: Path, endpoint: str, scratch: str) -> str:
    """A private certs.d for `endpoint` holding the cluster CA and the admin's client pair."""
    missing = [name for name in ("ca.crt", "admin.crt", "admin.key")
               if not (pki_dir / name).is_file()]
    if missing:
        raise ProvisionerError(f"no {', '.join(missing)} in {pki_dir}: run `provisioner create "
                               "cluster` first (it issues the admin certificate)")
    host_dir = Path(scratch) / "certs.d" / endpoint
    host_dir.mkdir(parents=True, mode=0o700)
    for name, placed in (("ca.crt", "ca.crt"), ("admin.crt", "client.cert"),
                         ("admin.key", "client.key")):
        target = host_dir / placed
        target.touch(mode=0o600)
        target.write_bytes((pki_dir / name).read_bytes())
    return str(Path(scratch) / "certs.d")


@images.command("push")
@SPEC_OPTION
@click.option("--root", default=None, help="This machine's runtime store to take IMAGEs from.")
@click.argument("refs", nargs=-1, required=True)
def push(spec_file: str, root: str | None, refs: tuple[str, ...]) -> None:
    """Push IMAGEs (from this machine's runtime store) to the cluster's registry."""
    from provisioner.components.runtime.images import registry
    from provisioner.components.runtime.images.errors import ImageError, ImageNotFound
    from provisioner.components.runtime.images.store import ImageStore
    from provisioner.components.runtime.paths import DEFAULT_ROOT
    from provisioner.state import ClusterState

    spec = _load(spec_file)
    endpoint = spec.registry_endpoint
    if endpoint is None:
        raise InvalidInputError(f"{spec_file}: the cluster has no registry (spec.registry.enabled "
                                "is false, or no control-plane host); use `images load` instead")
    store_root = root or DEFAULT_ROOT
    if not os.path.isdir(store_root):
        raise InvalidInputError(f"--root {store_root}: no container-runtime store here")
    store = ImageStore(store_root)
    targets = {ref: registry_name(endpoint, ref) for ref in refs}
    pki_dir = ClusterState.for_cluster(spec.name).pki_dir
    with tempfile.TemporaryDirectory(prefix="provisioner-push-") as scratch:
        certs_dir = admin_certs_dir(pki_dir, endpoint, scratch)
        for ref, target in targets.items():
            try:
                digest = registry.push(store, ref, target=target, certs_dir=certs_dir)
            except ImageNotFound as error:
                raise InvalidInputError(f"{error} (looked in {store_root})") from None
            except ImageError as error:
                raise ProvisionerError(f"pushing {ref} to {endpoint} failed: {error}") from None
            click.echo(f"[images] pushed {ref} ({digest}); pods use: {target}")
