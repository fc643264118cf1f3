"""A host's files as one archive: what GNU tar makes of it on a host (here, under a scratch root
instead of /, with the same flags)."""

from __future__ import annotations

import base64
import os
import stat
import subprocess

import pytest

from provisioner.engine.archive import EXTRACT, FileContent, tar_of


def extract(archive: bytes, root) -> None:
    command = EXTRACT.replace("-C /", f"-C {root}")
    subprocess.run(["sh", "-c", command], input=base64.encodebytes(archive), check=True)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_land_with_their_modes_and_content_and_directories_0700(tmp_path):
    (tmp_path / "etc" / "kubernetes" / "pki").mkdir(parents=True)
    os.chmod(tmp_path / "etc" / "kubernetes" / "pki", 0o755)      # loosened by someone: fixed
    extract(tar_of([FileContent("/etc/kubernetes/pki/ca.crt", b"cert\n", "644"),
                    FileContent("/etc/kubernetes/pki/ca.key", b"secret\n", "600"),
                    FileContent("/var/lib/kubelet/pki/kubelet.key", b"k", "600")]), tmp_path)
    pki = tmp_path / "etc" / "kubernetes" / "pki"
    assert (pki / "ca.key").read_bytes() == b"secret\n" and mode(pki / "ca.key") == 0o600
    assert (pki / "ca.crt").read_bytes() == b"cert\n" and mode(pki / "ca.crt") == 0o644
    assert mode(pki) == 0o700 and mode(tmp_path / "var" / "lib" / "kubelet" / "pki") == 0o700
    # directories on the way that the archive does not name are made as mkdir -p makes them
    assert mode(tmp_path / "var" / "lib") == 0o755
    assert os.stat(pki / "ca.key").st_uid == 0


def test_a_file_already_there_is_replaced_and_gets_the_archives_mode(tmp_path):
    key = tmp_path / "etc" / "k.key"
    key.parent.mkdir()
    key.write_bytes(b"old")
    os.chmod(key, 0o644)
    extract(tar_of([FileContent("/etc/k.key", b"new", "600")]), tmp_path)
    assert key.read_bytes() == b"new" and mode(key) == 0o600


def test_a_relative_path_is_refused():
    with pytest.raises(ValueError, match="must be absolute"):
        tar_of([FileContent("etc/k.key", b"", "600")])


def test_without_private_directories_an_existing_directory_keeps_its_mode(tmp_path):
    kubernetes = tmp_path / "etc" / "kubernetes"
    kubernetes.mkdir(parents=True)
    os.chmod(kubernetes, 0o755)
    extract(tar_of([FileContent("/etc/kubernetes/admin.conf", b"conf", "600")],
                   private_dirs=False), tmp_path)
    assert mode(kubernetes) == 0o755
    assert (kubernetes / "admin.conf").read_bytes() == b"conf" and mode(kubernetes / "admin.conf") == 0o600
