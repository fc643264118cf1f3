"""runtime: a small synchronous client of the runtime daemon's HTTP API over its unix socket.

The CLI is built on it and the kubelet will use it. Streaming endpoints answer with one JSON
object per line; the methods returning iterators yield those objects as they arrive. Any error
the daemon reports raises `RuntimeAPIError` with its message; no daemon at the socket raises
`DaemonUnreachable`.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import quote, urlencode

from . import iostream
from .paths import socket_path as default_socket_path


class RuntimeAPIError(Exception):
    def __init__(self, message: str, status: int = 500):
        super().__init__(message)
        self.status = status


class DaemonUnreachable(RuntimeAPIError):
    def __init__(self, socket_path: str, reason: str):
        super().__init__(
            f"cannot reach the runtime daemon at {socket_path}: is `provisioner-runtime daemon` "
            f"running? ({reason})", 0)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout: float | None):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def _ref_path(ref: str) -> str:
    return quote(ref, safe="/:@")


class RuntimeClient:
    def __init__(self, socket_path: str | None = None, timeout: float | None = None):
        self.socket_path = default_socket_path(socket_path)
        self.timeout = timeout

    # -- plumbing -------------------------------------------------------------------------

    def _open(self, method: str, path: str, body: Any = None, query: dict | None = None,
              raw_body: IO[bytes] | bytes | None = None) -> http.client.HTTPResponse:
        if query:
            query = {key: value for key, value in query.items() if value is not None}
            if query:
                path = f"{path}?{urlencode(query)}"
        conn = _UnixConnection(self.socket_path, self.timeout)
        headers = {}
        payload: Any = None
        chunked = False
        if raw_body is not None:
            headers["Content-Type"] = "application/x-tar"
            payload = raw_body
            chunked = not isinstance(raw_body, bytes)
            if chunked:
                headers["Transfer-Encoding"] = "chunked"
        elif body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body).encode()
        try:
            conn.request(method, path, body=payload, headers=headers, encode_chunked=chunked)
            response = conn.getresponse()
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as error:
            conn.close()
            raise DaemonUnreachable(self.socket_path, error.strerror or str(error)) from None
        if response.status >= 400:
            data = response.read()
            conn.close()
            try:
                message = json.loads(data)["message"]
            except (ValueError, KeyError, TypeError):
                message = data.decode(errors="replace").strip() or response.reason
            raise RuntimeAPIError(message, response.status)
        return response

    def _json(self, method: str, path: str, body: Any = None, query: dict | None = None) -> Any:
        response = self._open(method, path, body, query)
        data = response.read()
        return json.loads(data) if data else None

    def _stream(self, method: str, path: str, body: Any = None, query: dict | None = None,
                raw_body: IO[bytes] | bytes | None = None) -> Iterator[dict]:
        """One JSON object per line; a line with "error" raises (the status was already sent)."""
        response = self._open(method, path, body, query, raw_body)
        try:
            while True:
                line = response.readline()
                if not line:
                    return
                if not line.strip():
                    continue
                event = json.loads(line)
                if "error" in event:
                    raise RuntimeAPIError(event["error"], event.get("status", 500))
                yield event
        finally:
            response.close()

    # -- daemon and images ----------------------------------------------------------------

    def version(self) -> dict:
        return self._json("GET", "/v1/version")

    def images(self) -> list[dict]:
        return self._json("GET", "/v1/images")

    def image(self, ref: str) -> dict:
        return self._json("GET", f"/v1/images/{_ref_path(ref)}")

    def remove_image(self, ref: str, force: bool = False) -> list[str]:
        return self._json("DELETE", f"/v1/images/{_ref_path(ref)}",
                          query={"force": "1" if force else None})["deleted"]

    def bootstrap_images(self) -> list[dict]:
        """Make the daemon add busybox:latest and python:3.11 from host files if missing."""
        return self._json("POST", "/v1/images/bootstrap")

    def tag_image(self, source: str, target: str) -> None:
        self._json("POST", "/v1/images/tag", {"source": source, "target": target})

    def build(self, context_tar: IO[bytes] | bytes, tags: list[str],
              dockerfile: str = "Dockerfile", build_args: dict | None = None,
              no_cache: bool = False) -> Iterator[dict]:
        query = {"t": ",".join(tags), "dockerfile": dockerfile,
                 "buildargs": json.dumps(build_args) if build_args else None,
                 "nocache": "1" if no_cache else None}
        return self._stream("POST", "/v1/images/build", query=query, raw_body=context_tar)

    def pull(self, ref: str, insecure: bool = False,
             auth: dict | None = None) -> Iterator[dict]:
        """`auth`: {"username", "password"} (or {"identitytoken"}) for this pull only."""
        body = {"ref": ref, "insecure": insecure, **({"auth": auth} if auth else {})}
        return self._stream("POST", "/v1/images/pull", body)

    def push(self, ref: str, insecure: bool = False) -> Iterator[dict]:
        return self._stream("POST", "/v1/images/push", {"ref": ref, "insecure": insecure})

    def login(self, registry: str, username: str, password: str,
              insecure: bool = False) -> dict:
        """The daemon checks the credentials against the registry and saves them for pull and
        push; {"registry": host, "status": ...}."""
        return self._json("POST", "/v1/auth", {"registry": registry, "username": username,
                                               "password": password, "insecure": insecure})

    def logout(self, registry: str) -> dict:
        """{"registry": host, "removed": bool}."""
        return self._json("DELETE", f"/v1/auth/{quote(registry or 'docker.io', safe='')}")

    def save(self, ref: str, out: IO[bytes]) -> None:
        response = self._open("GET", f"/v1/images/{_ref_path(ref)}/save")
        try:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        finally:
            response.close()

    def load(self, archive: IO[bytes] | bytes) -> Iterator[dict]:
        return self._stream("POST", "/v1/images/load", raw_body=archive)

    # -- containers -----------------------------------------------------------------------

    def create(self, image: str, **options: Any) -> str:
        """Options as the API's create body: name, cmd, entrypoint, env, workdir, user, ports,
        volumes, memory, cpus, pids, network, pod, auto_remove, hostname, labels; cap_add,
        cap_drop, privileged, read_only, no_new_privileges (the kubelet's securityContext)."""
        return self._json("POST", "/v1/containers", {"image": image, **options})["id"]

    def start(self, container: str) -> dict:
        return self._json("POST", f"/v1/containers/{quote(container)}/start")

    def stop(self, container: str, timeout: float | None = None) -> dict:
        return self._json("POST", f"/v1/containers/{quote(container)}/stop", query={"t": timeout})

    def kill(self, container: str, signal: int | str = "KILL") -> None:
        self._json("POST", f"/v1/containers/{quote(container)}/kill", query={"signal": signal})

    def remove(self, container: str, force: bool = False) -> None:
        self._json("DELETE", f"/v1/containers/{quote(container)}",
                   query={"force": "1" if force else None})

    def containers(self, all: bool = False) -> list[dict]:
        return self._json("GET", "/v1/containers", query={"all": "1" if all else None})

    def inspect(self, container: str) -> dict:
        return self._json("GET", f"/v1/containers/{quote(container)}")

    def wait(self, container: str) -> dict:
        return self._json("POST", f"/v1/containers/{quote(container)}/wait")

    def logs(self, container: str, follow: bool = False,
             tail: int | None = None) -> Iterator[dict]:
        """Entries {"time", "stream", "data"}; data is text (undecodable bytes escaped)."""
        return self._stream("GET", f"/v1/containers/{quote(container)}/logs",
                            query={"follow": "1" if follow else None, "tail": tail})

    def exec(self, container: str, cmd: list[str], env: list[str] | None = None,
             workdir: str | None = None, user: str | None = None) -> Iterator[dict]:
        """Output events {"stream", "data"}, then {"exit_code": N} last."""
        return self._stream("POST", f"/v1/containers/{quote(container)}/exec",
                            {"cmd": cmd, "env": env or [], "workdir": workdir, "user": user})

    def exec_stream(self, container: str, cmd: list[str], env: list[str] | None = None,
                    workdir: str | None = None, user: str | None = None, stdin: bool = False,
                    tty: bool = False, size: tuple[int, int] | None = None
                    ) -> iostream.StreamConnection:
        """An interactive exec (stdin, a TTY of `size` rows and columns): the upgraded
        connection carrying its frames (iostream.py); the last one is its status."""
        return self._upgrade("POST", f"/v1/containers/{quote(container)}/exec", {
            "cmd": cmd, "env": env or [], "workdir": workdir, "user": user, "stdin": stdin,
            "tty": tty, "size": list(size) if size else None})

    def attach_stream(self, container: str, logs: bool = False) -> iostream.StreamConnection:
        """The container's own stdin and terminal (created with tty/stdin_open), output from
        now on (from the start with `logs`), its exit code as the last frame."""
        return self._upgrade("POST", f"/v1/containers/{quote(container)}/attach",
                             {"logs": logs})

    def _upgrade(self, method: str, path: str, body: dict) -> iostream.StreamConnection:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.socket_path)
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as error:
            sock.close()
            raise DaemonUnreachable(self.socket_path, error.strerror or str(error)) from None
        try:
            return iostream.open_upgraded(sock, method, path, body)
        except iostream.UpgradeRefused as refused:
            raise RuntimeAPIError(refused.message, refused.status) from None

    def exec_collect(self, container: str, cmd: list[str], **options: Any) -> tuple[int, bytes]:
        """Run a command to its end; its exit code and its stdout and stderr together."""
        output = b""
        exit_code = -1
        for event in self.exec(container, cmd, **options):
            if "exit_code" in event:
                exit_code = event["exit_code"]
            else:
                output += event["data"].encode("utf-8", "surrogateescape")
        return exit_code, output

    # -- pods -----------------------------------------------------------------------------

    def create_pod(self, name: str, namespace: str = "default", uid: str = "",
                   hostname: str | None = None, host_network: bool = False,
                   ports: list | None = None, labels: dict | None = None,
                   cgroup_parent: str | None = None) -> dict:
        """`cgroup_parent`: the group its members' cgroups go under (the kubelet's pod cgroup)."""
        return self._json("POST", "/v1/pods", {
            "name": name, "namespace": namespace, "uid": uid, "hostname": hostname or name,
            "host_network": host_network, "ports": ports or [], "labels": labels or {},
            **({"cgroup_parent": cgroup_parent} if cgroup_parent else {})})

    def pods(self) -> list[dict]:
        return self._json("GET", "/v1/pods")

    def pod(self, pod_id: str) -> dict:
        return self._json("GET", f"/v1/pods/{quote(pod_id)}")

    def remove_pod(self, pod_id: str) -> None:
        self._json("DELETE", f"/v1/pods/{quote(pod_id)}")
