"""runtime/images: the local image store, an OCI image layout under `<root>/images`.

    images/oci-layout, index.json      the layout marker; one index entry per (manifest, tag),
                                       tags in the org.opencontainers.image.ref.name annotation
    images/blobs/sha256/<hex>          configs, manifests and layer tars, content-addressed
    images/layers/<diff_id hex>/       each layer unpacked once, used as an overlay lower dir

Manifests pulled or loaded in Docker's v2 schema 2 format are kept byte for byte (so digests
survive a round trip); manifests this store writes itself are OCI.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import oci
from .blobs import BlobStore
from .errors import ImageError, ImageNotFound, InvalidReference
from .layers import diff_id_of, is_gzip, unpack_layer
from .reference import normalize_tag, parse_reference

_SHORT_ID = re.compile(r"^(?:sha256:)?[0-9a-f]{4,64}$")


@dataclass(frozen=True)
class Layer:
    digest: str             # sha256 of the blob as stored (compressed or not)
    diff_id: str            # sha256 of the uncompressed tar
    size: int
    media_type: str = oci.OCI_LAYER

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass
class Image:
    id: str                 # sha256 of the config blob (as Docker's image id)
    digest: str             # manifest digest
    tags: list[str]
    config: dict
    size: int
    created: str
    manifest_media_type: str = oci.OCI_MANIFEST
    layers: list[Layer] = field(default_factory=list)

    @property
    def short_id(self) -> str:
        return self.id[len("sha256:"):][:12]


class ImageStore:
    def __init__(self, root: str):
        """`root` is the runtime root; the layout lives in `<root>/images`."""
        self.root = os.path.join(root, "images")
        self.layers_dir = os.path.join(self.root, "layers")
        os.makedirs(self.layers_dir, exist_ok=True)
        # Unpacked layers hold whatever images carry (set-uid binaries, device nodes); only root
        # may reach them from the host, as with Docker's data directory.
        os.chmod(self.root, 0o700)
        self.blobs = BlobStore(self.root)
        self._index_path = os.path.join(self.root, "index.json")
        self._thread_lock = threading.RLock()
        layout = os.path.join(self.root, "oci-layout")
        if not os.path.exists(layout):
            _write_atomic(layout,
                          json.dumps({"imageLayoutVersion": oci.OCI_LAYOUT_VERSION}).encode())
        if not os.path.exists(self._index_path):
            with self._locked():
                if not os.path.exists(self._index_path):
                    self._write_index([])

    # ------------------------------------------------------------------ lookups

    def list(self) -> list[Image]:
        entries = self._read_index()
        images: dict[str, Image] = {}
        for entry in entries:
            digest = entry["digest"]
            if digest not in images:
                images[digest] = self._image_from_manifest(digest, entry.get("mediaType"))
            name = entry.get("annotations", {}).get(oci.REF_NAME_ANNOTATION)
            if name:
                images[digest].tags.append(name)
        return sorted(images.values(), key=lambda image: (image.created, image.id), reverse=True)

    def resolve(self, ref: str) -> Image:
        """A tag (`busybox` = `busybox:latest`), `name@sha256:...`, an image id or a short id."""
        images = self.list()
        try:
            parsed = parse_reference(ref)
        except InvalidReference:
            parsed = None
        if parsed is not None and parsed.digest is None:
            wanted = str(parsed)
            for image in images:
                if wanted in image.tags:
                    return image
        if parsed is not None and parsed.digest is not None:
            for image in images:
                if image.digest == parsed.digest:
                    return image
        if ref.startswith("sha256:") and oci.is_digest(ref):
            for image in images:
                if ref in (image.id, image.digest):
                    return image
        if _SHORT_ID.match(ref):
            prefix = ref if ref.startswith("sha256:") else "sha256:" + ref
            matches = {image.id: image for image in images if image.id.startswith(prefix)}
            if len(matches) == 1:
                return next(iter(matches.values()))
            if len(matches) > 1:
                raise ImageNotFound(f"short id {ref!r} matches {len(matches)} images; "
                                    "give more characters of the id")
        if parsed is None:
            raise InvalidReference(f"{ref!r} is neither a valid image reference nor an image id")
        raise ImageNotFound(
            f"image {ref!r} is not in the local store; pull, load or build it first")

    def exists(self, ref: str) -> bool:
        try:
            self.resolve(ref)
        except ImageNotFound:
            return False
        return True

    def read_blob_json(self, digest: str) -> dict:
        try:
            return json.loads(self.blobs.read(digest))
        except json.JSONDecodeError as error:
            raise ImageError(f"blob {digest} is not valid JSON: {error}") from None

    def manifest_bytes(self, image: Image) -> bytes:
        return self.blobs.read(image.digest)

    # ------------------------------------------------------------------ layers

    def add_layer(self, tar_path: str) -> Layer:
        """Store a layer tar (plain or gzip) as a blob; the source file is left in place."""
        label = f"layer file {tar_path}"
        diff_id = diff_id_of(tar_path, label)
        compressed = is_gzip(tar_path)
        digest = self.blobs.put_path(tar_path)
        media_type = oci.OCI_LAYER_GZIP if compressed else oci.OCI_LAYER
        return Layer(digest, diff_id if compressed else digest, self.blobs.size(digest), media_type)

    def layer_dir(self, layer: Layer) -> str:
        return os.path.join(self.layers_dir, oci.digest_hex(layer.diff_id))

    def keep_unpacked(self, layer: Layer, tree: str) -> None:
        """Move `tree`, from which `layer` was just packed (same filesystem), in as the layer's
        unpacked directory, unless the layer is unpacked already."""
        path = self.layer_dir(layer)
        if os.path.isdir(path):
            return
        os.chmod(tree, 0o755)          # as unpack_layer leaves a layer's root
        try:
            os.rename(tree, path)
        except OSError:
            if not os.path.isdir(path):     # not another process's copy, moved in meanwhile
                raise

    def layer_dirs(self, image: Image) -> list[str]:
        """Each layer unpacked (once per diff_id), bottom first, ready as overlay lower dirs."""
        return self.layer_dirs_of(image.layers, f"image {_name_of(image)}")

    def layer_dirs_of(self, layers: list[Layer], owner: str = "a build step") -> list[str]:
        dirs = []
        for layer in layers:
            path = self.layer_dir(layer)
            if not os.path.isdir(path):
                unpack_layer(self.blobs.path(layer.digest), path,
                             label=f"layer {layer.digest} of {owner}",
                             expected_diff_id=layer.diff_id)
            dirs.append(path)
        return dirs

    # ------------------------------------------------------------------ writing images

    def commit(self, config: dict, layers: list[Layer], tags: list[str]) -> Image:
        """Write the config (with rootfs.diff_ids from `layers`), an OCI manifest and the tags."""
        normalized_tags = [normalize_tag(tag) for tag in tags]
        config = dict(config)
        config["rootfs"] = {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]}
        config.setdefault("created", _now())
        config.setdefault("architecture", host_architecture())
        config.setdefault("os", "linux")
        for layer in layers:
            if not self.blobs.exists(layer.digest):
                raise ImageError(f"layer {layer.digest} is not in the image store; add it first")
        config_bytes = oci.canonical_json(config)
        config_digest = self.blobs.put_bytes(config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": oci.OCI_MANIFEST,
            "config": {"mediaType": oci.OCI_CONFIG, "digest": config_digest,
                       "size": len(config_bytes)},
            "layers": [layer.descriptor() for layer in layers],
        }
        manifest_bytes = oci.canonical_json(manifest)
        return self.add_manifest(manifest_bytes, oci.OCI_MANIFEST, normalized_tags)

    def add_manifest(self, manifest_bytes: bytes, media_type: str | None,
                     tags: list[str]) -> Image:
        """Record a manifest whose config and layer blobs are already stored; tag it."""
        try:
            manifest = json.loads(manifest_bytes)
        except json.JSONDecodeError as error:
            raise ImageError(f"image manifest is not valid JSON: {error}") from None
        media_type = oci.manifest_media_type(manifest, media_type or oci.OCI_MANIFEST)
        if media_type not in oci.MANIFEST_TYPES:
            raise ImageError(f"unsupported manifest media type {media_type!r}")
        needed = [manifest["config"]] + list(manifest.get("layers", []))
        for descriptor in needed:
            if not self.blobs.exists(descriptor["digest"]):
                raise ImageError(f"blob {descriptor['digest']} named by the manifest is missing")
        config = self.read_blob_json(manifest["config"]["digest"])
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        if len(diff_ids) != len(manifest.get("layers", [])):
            raise ImageError("image config lists a different number of layers than its manifest")
        digest = self.blobs.put_bytes(manifest_bytes)
        normalized_tags = [normalize_tag(tag) for tag in tags]
        with self._locked():
            entries = _without_tags(self._read_index(), normalized_tags)
            descriptor = {"mediaType": media_type, "digest": digest, "size": len(manifest_bytes)}
            if not any(entry["digest"] == digest for entry in entries) and not normalized_tags:
                entries.append(descriptor)
            for tag in normalized_tags:
                entries.append({**descriptor, "annotations": {oci.REF_NAME_ANNOTATION: tag}})
            self._write_index(_keep_untagged_once(entries))
        return self.resolve(digest)

    def tag(self, image: Image, ref: str) -> None:
        tag = normalize_tag(ref)
        with self._locked():
            entries = _without_tags(self._read_index(), [tag])
            descriptor = {"mediaType": image.manifest_media_type, "digest": image.digest,
                          "size": self.blobs.size(image.digest)}
            entries.append({**descriptor, "annotations": {oci.REF_NAME_ANNOTATION: tag}})
            self._write_index(_keep_untagged_once(entries))

    def remove(self, ref: str) -> list[str]:
        """Untag `ref`; when no tag is left (or an id was given) delete the image and the blobs
        and unpacked layers no other image uses. Returns Docker-style lines of what happened.

        The caller refuses first when a container uses the image.
        """
        image = self.resolve(ref)
        report: list[str] = []
        with self._locked():
            entries = self._read_index()
            parsed_tag = _tag_or_none(ref)
            by_tag = parsed_tag in image.tags
            if by_tag and len(image.tags) > 1:
                entries = [entry for entry in entries if _ref_name(entry) != parsed_tag]
                self._write_index(entries)
                return [f"Untagged: {parsed_tag}"]
            report += [f"Untagged: {tag}" for tag in image.tags]
            entries = [entry for entry in entries if entry["digest"] != image.digest]
            self._write_index(entries)
            still_used = self._referenced_blobs(entries)
        for digest in [image.digest, image.id] + [layer.digest for layer in image.layers]:
            if digest not in still_used:
                self.blobs.remove(digest)
        used_diff_ids = {layer.diff_id for other in self.list() for layer in other.layers}
        for layer in image.layers:
            if layer.diff_id not in used_diff_ids:
                _remove_tree_atomically(self.layer_dir(layer))
        report.append(f"Deleted: {image.id}")
        return report

    def verify(self, image: Image) -> None:
        """Re-hash every blob of the image; raises BlobCorrupted naming the first bad blob."""
        for digest in [image.digest, image.id] + [layer.digest for layer in image.layers]:
            self.blobs.verify(digest)

    # ------------------------------------------------------------------ internals

    def _image_from_manifest(self, digest: str, media_type: str | None) -> Image:
        manifest = self.read_blob_json(digest)
        config_digest = manifest["config"]["digest"]
        config = self.read_blob_json(config_digest)
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        layers = [Layer(descriptor["digest"], diff_id, descriptor["size"],
                        descriptor.get("mediaType", oci.OCI_LAYER))
                  for descriptor, diff_id in zip(manifest.get("layers", []), diff_ids)]
        return Image(
            id=config_digest, digest=digest, tags=[], config=config,
            size=sum(layer.size for layer in layers) + manifest["config"]["size"],
            created=config.get("created", ""),
            manifest_media_type=oci.manifest_media_type(manifest, media_type or oci.OCI_MANIFEST),
            layers=layers)

    def _referenced_blobs(self, entries: list[dict]) -> set[str]:
        used: set[str] = set()
        for entry in entries:
            manifest = self.read_blob_json(entry["digest"])
            used.add(entry["digest"])
            used.add(manifest["config"]["digest"])
            used.update(layer["digest"] for layer in manifest.get("layers", []))
        return used

    def _read_index(self) -> list[dict]:
        try:
            with open(self._index_path, "rb") as index:
                return list(json.load(index).get("manifests", []))
        except FileNotFoundError:
            return []
        except json.JSONDecodeError as error:
            raise ImageError(f"{self._index_path} is not valid JSON ({error}); "
                             "restore it or remove the image store") from None

    def _write_index(self, entries: list[dict]) -> None:
        document = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": entries}
        _write_atomic(self._index_path, json.dumps(document, indent=2).encode())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialize index updates between threads and between processes sharing the root."""
        with self._thread_lock, open(os.path.join(self.root, "lock"), "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


def host_architecture() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _name_of(image: Image) -> str:
    return image.tags[0] if image.tags else image.short_id


def _ref_name(entry: dict) -> str | None:
    return entry.get("annotations", {}).get(oci.REF_NAME_ANNOTATION)


def _tag_or_none(ref: str) -> str | None:
    try:
        return normalize_tag(ref)
    except InvalidReference:
        return None


def _without_tags(entries: list[dict], tags: list[str]) -> list[dict]:
    """Remove `tags` from the index; an image losing its last tag stays, untagged (dangling)."""
    kept = [entry for entry in entries if _ref_name(entry) not in tags]
    kept_digests = {entry["digest"] for entry in kept}
    for entry in entries:
        if entry["digest"] not in kept_digests:
            kept.append({key: value for key, value in entry.items() if key != "annotations"})
            kept_digests.add(entry["digest"])
    return kept


def _keep_untagged_once(entries: list[dict]) -> list[dict]:
    """Drop an untagged entry for a manifest that also has a tag; keep one for dangling ones."""
    tagged = {entry["digest"] for entry in entries if _ref_name(entry)}
    result, seen_untagged = [], set()
    for entry in entries:
        if _ref_name(entry) is None:
            if entry["digest"] in tagged or entry["digest"] in seen_untagged:
                continue
            seen_untagged.add(entry["digest"])
        result.append(entry)
    return result


def _write_atomic(path: str, data: bytes) -> None:
    fd, tmp_path = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".write-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise


def _remove_tree_atomically(path: str) -> None:
    if not os.path.isdir(path):
        return
    doomed = tempfile.mkdtemp(dir=os.path.dirname(path), prefix=".remove-")
    os.rename(path, os.path.join(doomed, "layer"))
    shutil.rmtree(doomed, ignore_errors=True)
