"""runtime/images: `save` and `load` image tarballs.

`save` writes an OCI image layout (oci-layout, index.json, blobs/sha256/...) plus Docker's
manifest.json, so both this runtime and `docker load` accept the file. Blobs are copied byte for
byte, so a save/load round trip keeps every digest.

`load` reads OCI layout tarballs and `docker save` tarballs (manifest.json, <id>.json,
<id>/layer.tar). Every blob is verified before any tag changes; on failure the blobs this load
added are removed again, so nothing half-loaded stays behind.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from typing import BinaryIO

from . import oci
from .errors import BlobCorrupted, ImageError, InvalidReference
from .layers import diff_id_of, is_gzip
from .reference import normalize_tag, parse_reference
from .store import Image, ImageStore, host_architecture

CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"


# ---------------------------------------------------------------------------------- save


def save(store: ImageStore, refs: list[str], destination: BinaryIO) -> None:
    """Write the images named by `refs` as one tarball to the binary stream `destination`."""
    images: list[tuple[str | None, Image]] = []
    for ref in refs:
        image = store.resolve(ref)
        images.append((_tag_if_named(ref, image), image))
    index_entries, docker_entries, blobs = [], [], []
    for tag, image in images:
        descriptor: dict = {"mediaType": image.manifest_media_type, "digest": image.digest,
                            "size": store.blobs.size(image.digest)}
        if tag:
            parsed = parse_reference(tag)
            descriptor["annotations"] = {
                CONTAINERD_NAME_ANNOTATION: f"{parsed.registry}/{parsed.repository}:{parsed.tag}",
                oci.REF_NAME_ANNOTATION: parsed.tag,
            }
        index_entries.append(descriptor)
        docker_entries.append({
            "Config": _blob_name(image.id),
            "RepoTags": [tag] if tag else [],
            "Layers": [_blob_name(layer.digest) for layer in image.layers],
        })
        blobs += [image.digest, image.id] + [layer.digest for layer in image.layers]
    index = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": index_entries}
    with tarfile.open(fileobj=destination, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        _add_bytes(archive, "oci-layout",
                   json.dumps({"imageLayoutVersion": oci.OCI_LAYOUT_VERSION}).encode())
        _add_bytes(archive, "index.json", json.dumps(index, indent=2).encode())
        _add_bytes(archive, "manifest.json", json.dumps(docker_entries, indent=2).encode())
        for directory in ("blobs", "blobs/sha256"):
            entry = tarfile.TarInfo(directory)
            entry.type, entry.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(entry)
        for digest in sorted(set(blobs)):
            entry = tarfile.TarInfo(_blob_name(digest))
            entry.size, entry.mode = store.blobs.size(digest), 0o644
            with open(store.blobs.path(digest), "rb") as content:
                archive.addfile(entry, content)


def save_to_path(store: ImageStore, refs: list[str], path: str) -> None:
    tmp_path = path + ".partial"
    try:
        with open(tmp_path, "wb") as out:
            save(store, refs, out)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise


def _tag_if_named(ref: str, image: Image) -> str | None:
    try:
        tag = normalize_tag(ref)
    except InvalidReference:
        tag = None
    if tag in image.tags:
        return tag
    return image.tags[0] if image.tags and not ref.startswith("sha256:") else None


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + oci.digest_hex(digest)


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    entry = tarfile.TarInfo(name)
    entry.size, entry.mode = len(data), 0o644
    archive.addfile(entry, io.BytesIO(data))


# ---------------------------------------------------------------------------------- load


def load(store: ImageStore, path: str) -> list[Image]:
    """Load every image of the tarball at `path` (OCI layout or `docker save` format)."""
    label = f"image archive {path}"
    added: list[str] = []
    try:
        with tarfile.open(path, mode="r:*") as archive:
            names = {_clean(member.name): member for member in archive.getmembers()}
            reader = _ArchiveReader(archive, names, label)
            if "index.json" in names:
                pending = _load_oci(store, reader, added)
            elif "manifest.json" in names:
                pending = _load_docker(store, reader, added)
            else:
                raise ImageError(f"{label} has neither index.json nor manifest.json; "
                                 "it is not an OCI or Docker image tarball")
        return [store.add_manifest(manifest, media_type, tags)
                for manifest, media_type, tags in pending]
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError) as error:
        _forget(store, added)
        raise ImageError(f"{label} is not a readable tarball ({error}); "
                         "it may be truncated or corrupted") from error
    except BaseException:
        _forget(store, added)
        raise


class _ArchiveReader:
    def __init__(self, archive: tarfile.TarFile, names: dict, label: str):
        self.archive, self.names, self.label = archive, names, label

    def open(self, name: str) -> BinaryIO:
        member = self.names.get(_clean(name))
        stream = self.archive.extractfile(member) if member is not None else None
        if stream is None:
            raise ImageError(f"{self.label} lacks {name!r}, which its manifest names")
        return stream  # type: ignore[return-value]

    def json(self, name: str) -> dict:
        try:
            return json.loads(self.open(name).read())
        except json.JSONDecodeError as error:
            raise ImageError(f"{self.label}: {name} is not valid JSON ({error})") from None


def _import_blob(store: ImageStore, reader: _ArchiveReader, name: str, expected: str | None,
                 added: list[str]) -> str:
    existed = expected is not None and store.blobs.exists(expected)
    try:
        digest = store.blobs.put_file(reader.open(name), expected)
    except BlobCorrupted:
        raise BlobCorrupted(f"{reader.label}: {name} is corrupted (its content does not match "
                            f"the digest {expected})") from None
    if not existed:
        added.append(digest)
    return digest


def _load_oci(store: ImageStore, reader: _ArchiveReader, added: list[str]) -> list:
    index = reader.json("index.json")
    pending = []
    for descriptor in _platform_manifests(store, reader, index, added):
        digest = descriptor["digest"]
        _import_blob(store, reader, _blob_name(digest), digest, added)
        manifest_bytes = store.blobs.read(digest)
        manifest = json.loads(manifest_bytes)
        for blob in [manifest["config"]] + list(manifest.get("layers", [])):
            _import_blob(store, reader, _blob_name(blob["digest"]), blob["digest"], added)
        annotations = descriptor.get("annotations", {})
        name = annotations.get(CONTAINERD_NAME_ANNOTATION) or annotations.get(
            oci.REF_NAME_ANNOTATION)
        tags = [name] if name and (":" in name or "/" in name) else []
        pending.append((manifest_bytes, descriptor.get("mediaType"), tags))
    return pending


def _platform_manifests(store: ImageStore, reader: _ArchiveReader, index: dict,
                        added: list[str]) -> list[dict]:
    """Manifests of the index, nested indexes narrowed to this host's platform."""
    result = []
    for descriptor in index.get("manifests", []):
        if descriptor.get("mediaType") in oci.INDEX_TYPES:
            digest = descriptor["digest"]
            nested = json.loads(reader.open(_blob_name(digest)).read())
            chosen = [entry for entry in nested.get("manifests", [])
                      if entry.get("platform", {}).get("architecture") in (None,
                                                                            host_architecture())]
            for entry in chosen[:1]:
                result.append({**entry, "annotations": descriptor.get("annotations", {})})
        else:
            result.append(descriptor)
    if not result:
        raise ImageError(f"{reader.label} holds no image for this platform")
    return result


def _load_docker(store: ImageStore, reader: _ArchiveReader, added: list[str]) -> list:
    entries = reader.json("manifest.json")
    if not isinstance(entries, list):
        raise ImageError(f"{reader.label}: manifest.json is not a list of images")
    pending = []
    for entry in entries:
        config_digest = _import_blob(store, reader, entry["Config"], None, added)
        config_bytes = store.blobs.read(config_digest)
        config = json.loads(config_bytes)
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        if len(diff_ids) != len(entry.get("Layers", [])):
            raise ImageError(f"{reader.label}: {entry['Config']} lists {len(diff_ids)} layers "
                             f"but manifest.json lists {len(entry.get('Layers', []))}")
        layers = []
        for layer_name, diff_id in zip(entry["Layers"], diff_ids):
            digest = _import_blob(store, reader, layer_name, None, added)
            path = store.blobs.path(digest)
            if diff_id_of(path, f"{reader.label}: {layer_name}") != diff_id:
                raise BlobCorrupted(f"{reader.label}: {layer_name} does not match the diff_id "
                                    f"{diff_id} of its image config")
            media_type = oci.OCI_LAYER_GZIP if is_gzip(path) else oci.OCI_LAYER
            layers.append({"mediaType": media_type, "digest": digest,
                           "size": store.blobs.size(digest)})
        manifest = {
            "schemaVersion": 2,
            "mediaType": oci.OCI_MANIFEST,
            "config": {"mediaType": oci.OCI_CONFIG, "digest": config_digest,
                       "size": len(config_bytes)},
            "layers": layers,
        }
        pending.append((oci.canonical_json(manifest), oci.OCI_MANIFEST,
                        list(entry.get("RepoTags") or [])))
    return pending


def _forget(store: ImageStore, added: list[str]) -> None:
    """Remove blobs this load added, unless an image in the index uses them meanwhile."""
    if not added:
        return
    used = {digest for image in store.list()
            for digest in [image.digest, image.id] + [layer.digest for layer in image.layers]}
    for digest in added:
        if digest not in used:
            store.blobs.remove(digest)


def _clean(name: str) -> str:
    return "/".join(part for part in name.split("/") if part not in ("", "."))
