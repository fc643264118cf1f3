"""kubelet: a pod's volumes as host directories, and the mounts each container gets.

Volumes live under <root-dir>/pods/<uid>/volumes/<plugin>/<name>, as kubelet lays them out.
configMap, secret, downwardAPI and projected volumes are written the way kubelet's atomic writer
does: files in a timestamped directory, `..data` a symlink to it, and each visible name a
symlink through `..data`; an update writes a new directory and swaps `..data` with one rename,
so a reader never sees half an update. emptyDir with medium Memory is a tmpfs (sizeLimit is its
size); hostPath checks its type.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import stat
import subprocess

from ..api.quantity import parse as parse_quantity
from .podspec import field_ref, resource_ref


class VolumeError(Exception):
    """A volume cannot be set up now (FailedMount); the message is the event's."""


PLUGIN_DIRS = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
               "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
               "projected": "kubernetes.io~projected"}


def write_atomic(directory: str, files: dict[str, tuple[bytes, int]]) -> bool:
    """Make `directory` hold exactly `files` (relative path -> (content, mode)); True if changed."""
    os.makedirs(directory, exist_ok=True)
    data_link = os.path.join(directory, "..data")
    current = os.path.join(directory, os.readlink(data_link)) if os.path.islink(data_link) else None
    if current and _same(current, files):
        return False
    stamp = dt.datetime.now(dt.timezone.utc).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    fresh = os.path.join(directory, stamp)
    for rel, (content, mode) in files.items():
        path = os.path.join(fresh, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            out.write(content)
        os.chmod(path, mode)
    os.chmod(fresh, 0o755)
    tmp_link = os.path.join(directory, "..data_tmp")
    if os.path.lexists(tmp_link):
        os.unlink(tmp_link)
    os.symlink(stamp, tmp_link)
    os.rename(tmp_link, data_link)              # the one atomic step readers see
    tops = {rel.split("/")[0] for rel in files}
    for entry in os.listdir(directory):
        if entry.startswith(".."):
            continue
        if entry not in tops:
            os.unlink(os.path.join(directory, entry))
    for top in tops:
        link = os.path.join(directory, top)
        if not os.path.lexists(link):
            os.symlink(os.path.join("..data", top), link)
    if current and os.path.isdir(current):
        shutil.rmtree(current, ignore_errors=True)
    return True


def _same(directory: str, files: dict[str, tuple[bytes, int]]) -> bool:
    seen = set()
    for base, _dirs, names in os.walk(directory):
        for name in names:
            path = os.path.join(base, name)
            rel = os.path.relpath(path, directory)
            seen.add(rel)
            if rel not in files:
                return False
            with open(path, "rb") as source:
                if source.read() != files[rel][0] or stat.S_IMODE(os.stat(path).st_mode) != \
                        files[rel][1]:
                    return False
    return seen == set(files)


def _items(data: dict[str, bytes], items: list | None, default_mode: int, what: str) -> dict:
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    out = {}
    for item in items:
        if item["key"] not in data:
            raise VolumeError(f"configuration key {item['key']!r} not found in {what}")
        out[item["path"]] = (data[item["key"]], item.get("mode", default_mode))
    return out


def config_data(obj: dict) -> dict[str, bytes]:
    if obj.get("kind") == "Secret":
        return {key: base64.b64decode(value) for key, value in (obj.get("data") or {}).items()}
    data = {key: value.encode() for key, value in (obj.get("data") or {}).items()}
    data.update({key: base64.b64decode(value) for key, value in
                 (obj.get("binaryData") or {}).items()})
    return data


HOST_PATH_TYPES = {
    "": lambda path: True,
    "Directory": os.path.isdir, "File": os.path.isfile, "Socket":
        lambda path: os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode),
    "CharDevice": lambda path: os.path.exists(path) and stat.S_ISCHR(os.stat(path).st_mode),
    "BlockDevice": lambda path: os.path.exists(path) and stat.S_ISBLK(os.stat(path).st_mode),
}


def host_path(volume: dict) -> str:
    spec = volume["hostPath"]
    path, kind = spec["path"], spec.get("type") or ""
    if kind == "DirectoryOrCreate":
        os.makedirs(path, mode=0o755, exist_ok=True)
    elif kind == "FileOrCreate":
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644), "wb"):
                pass
    elif kind not in HOST_PATH_TYPES:
        raise VolumeError(f"hostPath type {kind!r} of volume {volume['name']!r} is not one of "
                          "DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice, "
                          "BlockDevice")
    elif not HOST_PATH_TYPES[kind](path):
        raise VolumeError(f"hostPath type check failed: {path} is not a {kind}")
    return path


class PodVolumes:
    """Sets up and refreshes the volumes of one pod; `paths` maps volume name -> host path."""

    def __init__(self, pod_dir: str, pod: dict, lookup, token_source, node_ip: str,
                 node_allocatable: dict):
        self.pod_dir = pod_dir
        self.pod = pod
        self.lookup = lookup                 # async (kind, name) -> object or None
        self.token_source = token_source     # async (serviceAccount, audience, seconds) -> token
        self.node_ip = node_ip
        self.node_allocatable = node_allocatable
        self.paths: dict[str, str] = {}

    def dir_for(self, plugin: str, name: str) -> str:
        return os.path.join(self.pod_dir, "volumes", PLUGIN_DIRS[plugin], name)

    async def setup(self) -> bool:
        """Create or refresh every volume; True when any projected content changed."""
        changed = False
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            if "hostPath" in volume:
                self.paths[name] = host_path(volume)
            elif "emptyDir" in volume:
                self.paths[name] = self._empty_dir(volume)
            else:
                for plugin in ("configMap", "secret", "downwardAPI", "projected"):
                    if plugin in volume:
                        files = await getattr(self, f"_{plugin}_files")(volume[plugin], name)
                        if files is None:
                            break
                        path = self.dir_for(plugin, name)
                        changed |= write_atomic(path, files)
                        self.paths[name] = path
                        break
                else:
                    raise VolumeError(f"volume {name!r}: this kubelet supports emptyDir, hostPath, "
                                      "configMap, secret, downwardAPI and projected volumes")
        return changed

    def _empty_dir(self, volume: dict) -> str:
        path = self.dir_for("emptyDir", volume["name"])
        if os.path.ismount(path):
            return path
        os.makedirs(path, mode=0o777, exist_ok=True)
        os.chmod(path, 0o777)
        spec = volume["emptyDir"] or {}
        if spec.get("medium") == "Memory":
            size = ""
            if spec.get("sizeLimit"):
                size = f",size={int(parse_quantity(spec['sizeLimit']))}"
            result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"mode=0777{size}", "tmpfs",
                                     path], capture_output=True, text=True, check=False)
            if result.returncode:
                raise VolumeError(f"emptyDir {volume['name']!r}: tmpfs mount failed: "
                                  f"{result.stderr.strip()}")
        return path

    async def _source(self, kind: str, spec: dict, what: str) -> dict[str, bytes] | None:
        name = spec.get("name", "")
        obj = await self.lookup(kind, name)
        if obj is None:
            if spec.get("optional"):
                return {}
            raise VolumeError(f'{kind.lower()} "{name}" not found')
        return config_data(obj)

    async def _configMap_files(self, spec: dict, name: str):
        data = await self._source("ConfigMap", spec, f"volume {name}")
        return _items(data, spec.get("items"), spec.get("defaultMode", 0o644), f"configMap "
                      f"{spec.get('name')}")

    async def _secret_files(self, spec: dict, name: str):
        data = await self._source("Secret", {"name": spec.get("secretName", ""),
                                             "optional": spec.get("optional")}, name)
        return _items(data, spec.get("items"), spec.get("defaultMode", 0o644),
                      f"secret {spec.get('secretName')}")

    def _downward_items(self, items: list, default_mode: int) -> dict:
        out = {}
        container = (self.pod["spec"].get("containers") or [{}])[0]
        for item in items or []:
            if "fieldRef" in item:
                value = field_ref(self.pod, item["fieldRef"]["fieldPath"], self.node_ip)
            else:
                ref = item["resourceFieldRef"]
                owner = next((c for c in self.pod["spec"]["containers"]
                              if c["name"] == ref.get("containerName")), container)
                value = resource_ref(owner, ref, self.node_allocatable)
            out[item["path"]] = (value.encode(), item.get("mode", default_mode))
        return out

    async def _downwardAPI_files(self, spec: dict, name: str):
        return self._downward_items(spec.get("items"), spec.get("defaultMode", 0o644))

    async def _projected_files(self, spec: dict, name: str):
        mode = spec.get("defaultMode", 0o644)
        files: dict = {}
        for source in spec.get("sources") or []:
            if "configMap" in source:
                sub = source["configMap"]
                data = await self._source("ConfigMap", sub, name)
                files.update(_items(data, sub.get("items"), mode, f"configMap {sub.get('name')}"))
            elif "secret" in source:
                sub = source["secret"]
                data = await self._source("Secret", sub, name)
                files.update(_items(data, sub.get("items"), mode, f"secret {sub.get('name')}"))
            elif "downwardAPI" in source:
                files.update(self._downward_items(source["downwardAPI"].get("items"), mode))
            elif "serviceAccountToken" in source:
                sub = source["serviceAccountToken"]
                token = await self.token_source(
                    self.pod["spec"].get("serviceAccountName") or "default",
                    sub.get("audience") or "", sub.get("expirationSeconds", 3607))
                files[sub["path"]] = (token.encode(), mode)
        return files

    def mounts_for(self, container: dict) -> list[str]:
        """The runtime's "host:container[:ro]" volumes for a container's volumeMounts."""
        out = []
        for mount in container.get("volumeMounts") or []:
            source = self.paths.get(mount["name"])
            if source is None:
                raise VolumeError(f"volumeMount {mount['name']!r} names no volume of the pod")
            if mount.get("subPath"):
                source = os.path.join(source, mount["subPath"])
                if not os.path.exists(source):
                    os.makedirs(source, exist_ok=True)
            out.append(f"{source}:{mount['mountPath']}:{'ro' if mount.get('readOnly') else 'rw'}")
        return out

    def teardown(self) -> None:
        volumes_dir = os.path.join(self.pod_dir, "volumes")
        if os.path.isdir(volumes_dir):
            for base, dirs, _files in os.walk(volumes_dir, topdown=False):
                for entry in dirs:
                    path = os.path.join(base, entry)
                    if os.path.ismount(path):
                        subprocess.run(["umount", "-l", path], capture_output=True, check=False)
        shutil.rmtree(self.pod_dir, ignore_errors=True)
