"""Layer tars <-> overlay layer dirs: whiteouts, opaque dirs, metadata, traversal, atomicity."""

from __future__ import annotations

import ctypes
import hashlib
import io
import os
import stat
import tarfile

import pytest

from provisioner.components.runtime.images.errors import ImageError
from provisioner.components.runtime.images.layers import diff_upper_dir, unpack_layer

libc = ctypes.CDLL(None, use_errno=True)


def mount_overlay(lower_dirs_top_first: list[str], target: str) -> None:
    options = ("lowerdir=" + ":".join(lower_dirs_top_first)).encode()
    if libc.mount(b"overlay", target.encode(), b"overlay", 0, options) != 0:
        raise OSError(ctypes.get_errno(), "mount overlay")


def umount(target: str) -> None:
    libc.umount2(target.encode(), 2)  # MNT_DETACH


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def make_upper(upper) -> None:
    """A tree as overlayfs leaves it in an upper dir, with every kind of entry."""
    os.makedirs(upper / "etc")
    (upper / "etc" / "motd").write_text("hello\n")
    os.chmod(upper / "etc" / "motd", 0o640)
    os.chown(upper / "etc" / "motd", 1000, 1001)
    (upper / "bin").mkdir()
    (upper / "bin" / "tool").write_text("#!/bin/sh\n")
    os.chmod(upper / "bin" / "tool", 0o4755)
    os.link(upper / "bin" / "tool", upper / "bin" / "tool-link")
    os.symlink("/bin/tool", upper / "bin" / "alias")
    os.mknod(upper / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))       # a whiteout
    os.mkdir(upper / "cache")
    os.setxattr(upper / "cache", "trusted.overlay.opaque", b"y")          # an opaque dir
    (upper / "cache" / "fresh").write_text("new")
    os.mknod(upper / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkfifo(upper / "pipe", 0o600)


def test_diff_writes_oci_whiteouts_and_unpack_restores_overlay_form(tmp_path):
    upper = tmp_path / "upper"
    make_upper(upper)
    diff_upper_dir(str(upper), str(tmp_path / "layer.tar"))

    with tarfile.open(tmp_path / "layer.tar") as archive:
        names = archive.getnames()
        assert ".wh.gone" in names and "cache/.wh..wh..opq" in names
        assert archive.getmember("bin/tool-link").islnk()
        assert {member.mtime for member in archive.getmembers()} == {0}

    unpacked = tmp_path / "layers" / "one"
    unpack_layer(str(tmp_path / "layer.tar"), str(unpacked))
    gone = os.lstat(unpacked / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert os.getxattr(unpacked / "cache", "trusted.overlay.opaque") == b"y"
    assert not os.path.exists(unpacked / "cache" / ".wh..wh..opq")
    motd = os.lstat(unpacked / "etc" / "motd")
    assert (stat.S_IMODE(motd.st_mode), motd.st_uid, motd.st_gid) == (0o640, 1000, 1001)
    assert stat.S_IMODE(os.lstat(unpacked / "bin" / "tool").st_mode) == 0o4755
    assert os.lstat(unpacked / "bin" / "tool").st_ino == os.lstat(
        unpacked / "bin" / "tool-link").st_ino
    assert os.readlink(unpacked / "bin" / "alias") == "/bin/tool"
    assert os.lstat(unpacked / "null").st_rdev == os.makedev(1, 3)
    assert stat.S_ISFIFO(os.lstat(unpacked / "pipe").st_mode)

    # and back again: the unpacked dir diffs to the very same bytes
    diff_upper_dir(str(unpacked), str(tmp_path / "again.tar"))
    assert sha256(tmp_path / "again.tar") == sha256(tmp_path / "layer.tar")


def test_whiteouts_and_opaque_dirs_hide_lower_files_in_a_real_overlay(tmp_path):
    base = tmp_path / "base-tree"
    for name in ("gone", "cache/old", "cache/older", "keep"):
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(name)
    diff_upper_dir(str(base), str(tmp_path / "base.tar"))
    upper = tmp_path / "upper"
    make_upper(upper)
    diff_upper_dir(str(upper), str(tmp_path / "top.tar"))
    unpack_layer(str(tmp_path / "base.tar"), str(tmp_path / "layers" / "base"))
    unpack_layer(str(tmp_path / "top.tar"), str(tmp_path / "layers" / "top"))

    merged = tmp_path / "merged"
    merged.mkdir()
    mount_overlay([str(tmp_path / "layers" / "top"), str(tmp_path / "layers" / "base")],
                  str(merged))
    try:
        assert sorted(os.listdir(merged / "cache")) == ["fresh"]
        assert not os.path.exists(merged / "gone")
        assert (merged / "keep").read_text() == "keep"
        assert (merged / "etc" / "motd").read_text() == "hello\n"
    finally:
        umount(str(merged))


def test_rebuilt_tree_with_new_mtimes_gives_identical_layer_digest(tmp_path):
    for attempt in ("a", "b"):
        tree = tmp_path / attempt
        (tree / "app").mkdir(parents=True)
        (tree / "app" / "main.py").write_text("print('hi')\n")
        os.utime(tree / "app" / "main.py", (1_700_000_000 + ord(attempt),) * 2)
        diff_upper_dir(str(tree), str(tmp_path / f"{attempt}.tar"))
    assert sha256(tmp_path / "a.tar") == sha256(tmp_path / "b.tar")


def tar_with(entries: list[tarfile.TarInfo], path) -> str:
    with tarfile.open(path, "w") as archive:
        for entry in entries:
            archive.addfile(entry, io.BytesIO(b"x" * entry.size) if entry.isreg() else None)
    return str(path)


def entry(name, kind=tarfile.REGTYPE, linkname="", size=1):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, size if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize("entries, complaint", [
    ([entry("../escape")], "escapes the layer"),
    ([entry("a/../../escape")], "escapes the layer"),
    ([entry("link", tarfile.SYMTYPE, "/tmp"), entry("link/planted")], "goes through the symlink"),
    ([entry("hard", tarfile.LNKTYPE, "../../etc/passwd")], "escapes the layer"),
    ([entry("hard", tarfile.LNKTYPE, "missing")], "not an earlier file"),
])
def test_unpack_refuses_traversal_and_leaves_nothing(tmp_path, entries, complaint):
    layer = tar_with(entries, tmp_path / "evil.tar")
    destination = tmp_path / "layers" / "evil"
    with pytest.raises(ImageError, match=complaint):
        unpack_layer(layer, str(destination), label="layer evil")
    assert os.listdir(tmp_path / "layers") == []
    assert not os.path.exists("/tmp/planted")


def test_truncated_layer_gives_clear_error_and_no_half_layer(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "big").write_bytes(os.urandom(200_000))
    diff_upper_dir(str(tree), str(tmp_path / "layer.tar"))
    data = (tmp_path / "layer.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[:100_000])
    with pytest.raises(ImageError, match="layer cut"):
        unpack_layer(str(tmp_path / "cut.tar"), str(tmp_path / "layers" / "cut"), label="layer cut")
    assert os.listdir(tmp_path / "layers") == []


def test_unpack_checks_the_expected_diff_id(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "file").write_text("content")
    diff_upper_dir(str(tree), str(tmp_path / "layer.tar"))
    with pytest.raises(ImageError, match="not the diff_id"):
        unpack_layer(str(tmp_path / "layer.tar"), str(tmp_path / "layers" / "x"),
                     expected_diff_id="sha256:" + "0" * 64)
    assert os.listdir(tmp_path / "layers") == []
