"""save -o / load -i: OCI layout tarballs, Docker `save` tarballs, corrupted input."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile

import pytest

from provisioner.components.runtime.images import archive
from provisioner.components.runtime.images.errors import BlobCorrupted, ImageError
from provisioner.components.runtime.images.layers import diff_upper_dir

from .conftest import make_image, write_tree


def blob_files(store) -> set[str]:
    return set(os.listdir(store.blobs.dir))


def test_save_load_round_trip_keeps_every_digest_bit_exact(store, other_store, tmp_path):
    image = make_image(store, str(tmp_path), [{"bin/app": "#!/bin/sh\n"}, {"etc/conf": "x=1"}],
                       ["web:1"], {"config": {"Cmd": ["/bin/app"], "Env": ["A=1"]}})
    saved = tmp_path / "web.tar"
    archive.save_to_path(store, ["web:1"], str(saved))

    with tarfile.open(saved) as tar:
        names = set(tar.getnames())
        assert {"oci-layout", "index.json", "manifest.json"} <= names
        index = json.load(tar.extractfile("index.json"))
        docker_manifest = json.load(tar.extractfile("manifest.json"))
    assert index["manifests"][0]["digest"] == image.digest
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == \
        "docker.io/library/web:1"
    assert docker_manifest == [{"Config": f"blobs/sha256/{image.id[7:]}", "RepoTags": ["web:1"],
                                "Layers": [f"blobs/sha256/{layer.digest[7:]}"
                                           for layer in image.layers]}]

    [loaded] = archive.load(other_store, str(saved))
    assert (loaded.id, loaded.digest, loaded.tags) == (image.id, image.digest, ["web:1"])
    assert loaded.config["config"]["Cmd"] == ["/bin/app"]
    archive.save_to_path(other_store, ["web:1"], str(tmp_path / "again.tar"))
    assert hashlib.sha256(saved.read_bytes()).digest() == \
        hashlib.sha256((tmp_path / "again.tar").read_bytes()).digest()
    dirs = other_store.layer_dirs(loaded)
    assert open(os.path.join(dirs[1], "etc", "conf")).read() == "x=1"


def docker_save_tarball(tmp_path) -> tuple[str, str]:
    """A tarball laid out as `docker save` writes it (legacy format, uncompressed layers)."""
    write_tree(str(tmp_path / "rootfs"), {"bin/hello": "hello from docker\n"})
    diff_upper_dir(str(tmp_path / "rootfs"), str(tmp_path / "layer.tar"))
    layer = (tmp_path / "layer.tar").read_bytes()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["/bin/hello"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    image_id = hashlib.sha256(config).hexdigest()
    layer_dir = "f" * 64
    files = {
        f"{image_id}.json": config,
        f"{layer_dir}/layer.tar": layer,
        f"{layer_dir}/VERSION": b"1.0",
        "manifest.json": json.dumps([{"Config": f"{image_id}.json",
                                      "RepoTags": ["hello:docker"],
                                      "Layers": [f"{layer_dir}/layer.tar"]}]).encode(),
        "repositories": json.dumps({"hello": {"docker": layer_dir}}).encode(),
    }
    path = str(tmp_path / "docker-save.tar")
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path, "sha256:" + image_id


def test_load_docker_save_tarball(other_store, tmp_path):
    path, image_id = docker_save_tarball(tmp_path)
    [image] = archive.load(other_store, path)
    assert image.id == image_id and image.tags == ["hello:docker"]
    [directory] = other_store.layer_dirs(image)
    assert open(os.path.join(directory, "bin", "hello")).read() == "hello from docker\n"
    assert other_store.resolve("hello:docker").config["config"]["Cmd"] == ["/bin/hello"]


def test_corrupted_blob_in_tarball_is_refused_and_nothing_stays(store, other_store, tmp_path):
    make_image(store, str(tmp_path), [{"data": "original-content"}], ["c:1"])
    archive.save_to_path(store, ["c:1"], str(tmp_path / "c.tar"))
    data = (tmp_path / "c.tar").read_bytes()
    assert data.count(b"original-content") == 1
    (tmp_path / "bad.tar").write_bytes(data.replace(b"original-content", b"tampered-content"))
    with pytest.raises(BlobCorrupted, match=r"bad\.tar: blobs/sha256/[0-9a-f]+ is corrupted"):
        archive.load(other_store, str(tmp_path / "bad.tar"))
    assert other_store.list() == [] and blob_files(other_store) == set()
    assert os.listdir(other_store.blobs.tmp_dir) == []


def test_truncated_and_foreign_tarballs_give_one_clear_error(store, other_store, tmp_path):
    make_image(store, str(tmp_path), [{"data": os.urandom(50_000).hex()}], ["t:1"])
    archive.save_to_path(store, ["t:1"], str(tmp_path / "t.tar"))
    data = (tmp_path / "t.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.tar"):
        archive.load(other_store, str(tmp_path / "cut.tar"))
    assert other_store.list() == [] and blob_files(other_store) == set()

    (tmp_path / "junk.tar").write_bytes(b"not a tarball at all" * 100)
    with pytest.raises(ImageError, match=r"junk\.tar is not a readable tarball"):
        archive.load(other_store, str(tmp_path / "junk.tar"))

    with tarfile.open(tmp_path / "empty.tar", "w"):
        pass
    with pytest.raises(ImageError, match="neither index.json nor manifest.json"):
        archive.load(other_store, str(tmp_path / "empty.tar"))


def test_save_of_unknown_image_names_it_and_writes_no_file(store, tmp_path):
    with pytest.raises(ImageError, match="'ghost:1' is not in the local store"):
        archive.save_to_path(store, ["ghost:1"], str(tmp_path / "ghost.tar"))
    assert not os.path.exists(tmp_path / "ghost.tar")
    assert not os.path.exists(tmp_path / "ghost.tar.partial")
