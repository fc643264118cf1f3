"""runtime/images: layer tars <-> directories usable as overlay layers.

`unpack_layer` turns an OCI layer tar into a directory for overlayfs' lowerdir: OCI whiteouts
(`.wh.name`) become overlay whiteouts (a 0:0 character device) and opaque markers
(`.wh..wh..opq`) become the `trusted.overlay.opaque=y` xattr. It writes into a temporary
directory and renames it into place, so a crash never leaves a half layer in use.

`diff_upper_dir` is the reverse, for builds: an overlay upper dir becomes a deterministic layer
tar (sorted names, mtimes clamped, no user/group names), so equal inputs give equal digests.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
from typing import BinaryIO

from .errors import ImageError

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
# Only these xattrs travel inside layers; trusted.* would let a layer steer overlayfs.
KEPT_XATTR_PREFIXES = ("security.capability", "user.")
PAX_XATTR = "SCHILY.xattr."
CHUNK = 1024 * 1024


def open_decompressed(path: str) -> BinaryIO:
    """The layer file as an uncompressed tar stream (plain or gzip; zstd is refused)."""
    raw = open(path, "rb")
    magic = raw.read(4)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if magic == b"\x28\xb5\x2f\xfd":
        raw.close()
        raise ImageError(f"layer {path} is zstd-compressed, which this runtime does not support")
    return raw


def is_gzip(path: str) -> bool:
    with open(path, "rb") as layer:
        return layer.read(2) == b"\x1f\x8b"


def diff_id_of(path: str, label: str = "layer") -> str:
    """sha256 of the uncompressed tar (the layer's diff_id)."""
    state = hashlib.sha256()
    try:
        with open_decompressed(path) as stream:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                state.update(chunk)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise ImageError(f"{label} is not a readable tar or gzip stream: {error}") from error
    return "sha256:" + state.hexdigest()


# ---------------------------------------------------------------------------------- unpacking


def unpack_layer(layer_path: str, destination: str, label: str = "layer",
                 expected_diff_id: str | None = None) -> None:
    """Unpack the layer tar at `layer_path` into `destination`, which must not exist yet.

    With `expected_diff_id`, the uncompressed stream must hash to it or nothing is kept.
    If another process unpacked the same layer meanwhile, its copy is kept and ours dropped.
    """
    parent = os.path.dirname(destination.rstrip("/"))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=".unpack-")
    try:
        os.chmod(staging, 0o755)
        with open_decompressed(layer_path) as raw_stream:
            stream = _HashingReader(raw_stream)
            _extract(stream, staging, label)  # type: ignore[arg-type]
            stream.drain()
        if expected_diff_id is not None and stream.digest() != expected_diff_id:
            raise ImageError(f"{label}: uncompressed content hashes to {stream.digest()}, "
                             f"not the diff_id {expected_diff_id} its image config names")
        try:
            os.rename(staging, destination)
        except OSError:
            if not os.path.isdir(destination):
                raise
            shutil.rmtree(staging)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, (tarfile.TarError, EOFError, gzip.BadGzipFile)):
            raise ImageError(f"{label} is not a valid layer tar: {error}") from error
        raise


class _HashingReader:
    """A read-only stream wrapper hashing what passes through (the diff_id while unpacking)."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._state = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._state.update(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def digest(self) -> str:
        return "sha256:" + self._state.hexdigest()


def _extract(stream: BinaryIO, root: str, label: str) -> None:
    directories: list[tuple[str, tarfile.TarInfo]] = []
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for member in archive:
            name = _clean_name(member.name, label)
            base = os.path.basename(name)
            parent_rel = os.path.dirname(name)
            if base == OPAQUE_MARKER:
                parent = _ensure_parents(root, name, label)
                os.setxattr(parent, OPAQUE_XATTR, b"y", follow_symlinks=False)
                continue
            if base.startswith(WHITEOUT_PREFIX):
                target_rel = os.path.join(parent_rel, base[len(WHITEOUT_PREFIX):])
                parent = _ensure_parents(root, target_rel, label)
                target = os.path.join(parent, base[len(WHITEOUT_PREFIX):])
                _remove_existing(target)
                os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0))
                continue
            if name == "":
                if member.isdir():
                    directories.append((root, member))
                continue
            path = os.path.join(_ensure_parents(root, name, label), base)
            _create(archive, member, root, path, name, label)
            if member.isdir():
                directories.append((path, member))
            else:
                _apply_metadata(path, member)
    # Directory times last: creating their children changed them.
    for path, member in reversed(directories):
        _apply_metadata(path, member)


def _clean_name(name: str, label: str) -> str:
    """A member name relative to the layer root; `..` anywhere is refused."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ImageError(f"{label}: entry {name!r} escapes the layer with '..'; refusing it")
    return "/".join(parts)


def _ensure_parents(root: str, name: str, label: str) -> str:
    """Create missing parent directories of `name` and return the parent's path.

    Never walks through a symlink: a tar that first plants `a -> /etc` and then writes
    `a/passwd` would otherwise write outside the layer.
    """
    current = root
    for component in name.split("/")[:-1]:
        current = os.path.join(current, component)
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, 0o755)
            continue
        if stat.S_ISLNK(info.st_mode):
            link = os.path.relpath(current, root)
            raise ImageError(
                f"{label}: entry {name!r} goes through the symlink {link!r};"
                " refusing a layer that could write outside its directory")
        if not stat.S_ISDIR(info.st_mode):
            os.unlink(current)
            os.mkdir(current, 0o755)
    return current


def _remove_existing(path: str) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _create(archive: tarfile.TarFile, member: tarfile.TarInfo, root: str, path: str,
            name: str, label: str) -> None:
    if member.isdir():
        if os.path.isdir(path) and not os.path.islink(path):
            return
        _remove_existing(path)
        os.mkdir(path, 0o700)
        return
    _remove_existing(path)
    if member.isreg():
        source = archive.extractfile(member)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            if source is not None:
                shutil.copyfileobj(source, out, CHUNK)
    elif member.issym():
        os.symlink(member.linkname, path)
    elif member.islnk():
        target_name = _clean_name(member.linkname, label)
        target = os.path.join(_ensure_parents(root, target_name, label),
                              os.path.basename(target_name))
        if not target_name or not os.path.lexists(target) or os.path.isdir(target):
            raise ImageError(f"{label}: hard link {name!r} points to {member.linkname!r}, "
                             "which is not an earlier file of the layer")
        os.link(target, path, follow_symlinks=False)
    elif member.ischr() or member.isblk():
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
    elif member.isfifo():
        os.mkfifo(path, 0o600)
    else:
        raise ImageError(f"{label}: entry {name!r} has an unsupported tar type {member.type!r}")


def _apply_metadata(path: str, member: tarfile.TarInfo) -> None:
    if member.islnk():
        return  # a hard link shares its target's inode; chown here would clear set-uid bits
    os.chown(path, member.uid, member.gid, follow_symlinks=False)
    for key, value in member.pax_headers.items():
        if key.startswith(PAX_XATTR):
            attribute = key[len(PAX_XATTR):]
            if attribute.startswith(KEPT_XATTR_PREFIXES) and not member.issym():
                os.setxattr(path, attribute, value.encode("utf-8", "surrogateescape"),
                            follow_symlinks=False)
    if member.issym():
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
        return
    # After chown: changing the owner clears set-uid bits.
    os.chmod(path, stat.S_IMODE(member.mode))
    os.utime(path, (member.mtime, member.mtime))


# ---------------------------------------------------------------------------------- diffing


def diff_upper_dir(upper: str, dest_tar: str, source_date_epoch: int = 0) -> None:
    """Write the overlay upper dir `upper` as an OCI layer tar at `dest_tar`.

    Overlay whiteouts (0:0 char devices) become `.wh.<name>`, opaque directories get a
    `.wh..wh..opq` entry; hard links inside the dir stay hard links. Every mtime is clamped to
    `source_date_epoch` so the same tree always gives the same bytes.
    """
    seen_inodes: dict[tuple[int, int], str] = {}
    tmp_path = dest_tar + ".partial"
    try:
        with open(tmp_path, "wb") as out, \
                tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
            _add_tree(archive, upper, "", seen_inodes, source_date_epoch)
        os.replace(tmp_path, dest_tar)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise


def _add_tree(archive: tarfile.TarFile, directory: str, prefix: str,
              seen_inodes: dict[tuple[int, int], str], epoch: int) -> None:
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        rel = prefix + name
        info = os.lstat(path)
        mode = info.st_mode
        if stat.S_ISCHR(mode) and info.st_rdev == 0:
            whiteout = _tar_info(prefix + WHITEOUT_PREFIX + name, info, epoch)
            whiteout.type, whiteout.mode, whiteout.uid, whiteout.gid = tarfile.REGTYPE, 0o600, 0, 0
            archive.addfile(whiteout)
            continue
        if stat.S_ISSOCK(mode):
            continue  # sockets cannot be stored in a tar; they are recreated at run time
        entry = _tar_info(rel, info, epoch)
        _add_xattrs(entry, path, mode)
        if stat.S_ISDIR(mode):
            entry.type = tarfile.DIRTYPE
            archive.addfile(entry)
            if _is_opaque(path):
                marker = _tar_info(rel + "/" + OPAQUE_MARKER, info, epoch)
                marker.type, marker.mode, marker.uid, marker.gid = tarfile.REGTYPE, 0o600, 0, 0
                archive.addfile(marker)
            _add_tree(archive, path, rel + "/", seen_inodes, epoch)
        elif stat.S_ISREG(mode):
            key = (info.st_dev, info.st_ino)
            if info.st_nlink > 1 and key in seen_inodes:
                entry.type, entry.linkname = tarfile.LNKTYPE, seen_inodes[key]
                archive.addfile(entry)
                continue
            seen_inodes[key] = rel
            entry.type, entry.size = tarfile.REGTYPE, info.st_size
            with open(path, "rb") as content:
                archive.addfile(entry, content)
        elif stat.S_ISLNK(mode):
            entry.type, entry.linkname = tarfile.SYMTYPE, os.readlink(path)
            archive.addfile(entry)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            entry.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            entry.devmajor, entry.devminor = os.major(info.st_rdev), os.minor(info.st_rdev)
            archive.addfile(entry)
        elif stat.S_ISFIFO(mode):
            entry.type = tarfile.FIFOTYPE
            archive.addfile(entry)


def _tar_info(name: str, info: os.stat_result, epoch: int) -> tarfile.TarInfo:
    entry = tarfile.TarInfo(name)
    entry.mode = stat.S_IMODE(info.st_mode)
    entry.uid, entry.gid = info.st_uid, info.st_gid
    entry.uname = entry.gname = ""
    entry.mtime = min(int(info.st_mtime), epoch)
    return entry


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _add_xattrs(entry: tarfile.TarInfo, path: str, mode: int) -> None:
    if stat.S_ISLNK(mode):
        return
    try:
        names = sorted(os.listxattr(path, follow_symlinks=False))
    except OSError:
        return
    for attribute in names:
        if attribute.startswith(KEPT_XATTR_PREFIXES):
            value = os.getxattr(path, attribute, follow_symlinks=False)
            entry.pax_headers[PAX_XATTR + attribute] = value.decode("utf-8", "surrogateescape")
