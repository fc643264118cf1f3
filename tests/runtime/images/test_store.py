"""The OCI image layout store: tags, resolution, verification, layer dirs, removal."""

from __future__ import annotations

import json
import os

import pytest

from provisioner.components.runtime.images.errors import BlobCorrupted, ImageError, ImageNotFound
from provisioner.components.runtime.images.store import ImageStore

from .conftest import make_image


def test_layout_on_disk_is_an_oci_image_layout(store, tmp_path):
    image = make_image(store, str(tmp_path), [{"etc/hostname": "box\n"}], ["web:1"])
    root = store.root
    assert json.load(open(os.path.join(root, "oci-layout"))) == {"imageLayoutVersion": "1.0.0"}
    index = json.load(open(os.path.join(root, "index.json")))
    [entry] = index["manifests"]
    assert entry["digest"] == image.digest
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "web:1"
    manifest = json.load(open(os.path.join(root, "blobs", "sha256", image.digest[7:])))
    assert manifest["config"]["digest"] == image.id
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    config = json.load(open(os.path.join(root, "blobs", "sha256", image.id[7:])))
    assert config["rootfs"]["diff_ids"] == [image.layers[0].diff_id]


def test_resolve_by_name_tag_id_short_id_and_digest(store, tmp_path):
    image = make_image(store, str(tmp_path), [{"a": "1"}], ["busybox"])
    assert image.tags == ["busybox:latest"]
    for ref in ("busybox", "busybox:latest", "docker.io/library/busybox:latest", image.id,
                image.id[7:19], image.id[7:], f"busybox@{image.digest}", image.digest):
        assert store.resolve(ref).id == image.id, ref
    with pytest.raises(ImageNotFound, match="image 'nginx' is not in the local store"):
        store.resolve("nginx")


def test_retagging_moves_the_tag_and_keeps_the_old_image_dangling(store, tmp_path):
    first = make_image(store, str(tmp_path / "1"), [{"a": "1"}], ["app:1"])
    second = make_image(store, str(tmp_path / "2"), [{"a": "2"}], ["app:1"])
    assert store.resolve("app:1").id == second.id
    by_id = {image.id: image for image in store.list()}
    assert by_id[first.id].tags == [] and by_id[second.id].tags == ["app:1"]


def test_layer_dirs_unpack_once_and_hold_the_files(store, tmp_path):
    image = make_image(store, str(tmp_path), [{"etc/a": "A"}, {"etc/b": "B"}], ["two:1"])
    dirs = store.layer_dirs(image)
    assert [open(os.path.join(d, "etc", name)).read() for d, name in zip(dirs, "ab")] == ["A", "B"]
    marker = os.path.join(dirs[0], "marker")
    open(marker, "w").close()
    assert store.layer_dirs(image) == dirs and os.path.exists(marker)  # not unpacked again


def test_verify_rejects_a_corrupted_blob(store, tmp_path):
    image = make_image(store, str(tmp_path), [{"data": "original"}], ["v:1"])
    store.verify(image)
    blob = store.blobs.path(image.layers[0].digest)
    content = open(blob, "rb").read().replace(b"original", b"tampered")
    open(blob, "wb").write(content)
    with pytest.raises(BlobCorrupted, match=f"blob {blob} is corrupted"):
        store.verify(image)
    with pytest.raises(ImageError, match="not the diff_id"):
        store.layer_dirs(image)
    assert os.listdir(store.layers_dir) == []


def test_remove_untags_then_deletes_only_unshared_blobs(store, tmp_path):
    base = {"shared": "s"}
    one = make_image(store, str(tmp_path / "1"), [base, {"one": "1"}], ["one:1", "one:latest"])
    two = make_image(store, str(tmp_path / "2"), [base, {"two": "2"}], ["two:1"])
    store.layer_dirs(one)
    assert store.remove("one:latest") == ["Untagged: one:latest"]
    assert store.resolve("one:1").id == one.id
    assert store.remove("one:1") == ["Untagged: one:1", f"Deleted: {one.id}"]
    with pytest.raises(ImageNotFound):
        store.resolve(one.id)
    assert not store.blobs.exists(one.layers[1].digest)
    assert store.blobs.exists(two.layers[0].digest)       # shared with two:1
    assert os.listdir(store.layers_dir) == [two.layers[0].diff_id[7:]]
    assert [image.id for image in ImageStore(os.path.dirname(store.root)).list()] == [two.id]


def test_gzip_layers_keep_their_blob_and_unpack(store, tmp_path):
    import gzip
    import shutil
    make_image(store, str(tmp_path), [{"x": "y"}], ["plain:1"])
    with open(tmp_path / "layer-0.tar", "rb") as raw, \
            gzip.open(tmp_path / "layer.tar.gz", "wb") as packed:
        shutil.copyfileobj(raw, packed)
    layer = store.add_layer(str(tmp_path / "layer.tar.gz"))
    assert layer.media_type.endswith("+gzip") and layer.digest != layer.diff_id
    image = store.commit({}, [layer], ["gz:1"])
    [directory] = store.layer_dirs(image)
    assert open(os.path.join(directory, "x")).read() == "y"
