"""The provisioner's own door to a cluster's API: synchronous HTTPS with the admin certificate.

Phases after the control plane is up (upload-config, bootstrap-token, mark-control-plane, join,
addons, verify) talk to the cluster only through this client. It is synchronous on purpose: the
provisioner's SSH side runs under gevent, whose patched sockets make plain blocking calls
cooperative, while an asyncio loop would not mix with them.

`ensure` is the idempotent write every phase uses: create when missing, replace when the
declared fields differ, and say which of the three happened.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from provisioner.errors import ProvisionerError

# kind -> (api path prefix, plural, namespaced); enough for what the provisioner writes.
KINDS: dict[tuple[str, str], tuple[str, str, bool]] = {
    ("v1", "Namespace"): ("/api/v1", "namespaces", False),
    ("v1", "Node"): ("/api/v1", "nodes", False),
    ("v1", "Pod"): ("/api/v1", "pods", True),
    ("v1", "Service"): ("/api/v1", "services", True),
    ("v1", "ConfigMap"): ("/api/v1", "configmaps", True),
    ("v1", "Secret"): ("/api/v1", "secrets", True),
    ("v1", "ServiceAccount"): ("/api/v1", "serviceaccounts", True),
    ("v1", "Endpoints"): ("/api/v1", "endpoints", True),
    ("apps/v1", "Deployment"): ("/apis/apps/v1", "deployments", True),
    ("apps/v1", "DaemonSet"): ("/apis/apps/v1", "daemonsets", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"):
        ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"):
        ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    ("rbac.authorization.k8s.io/v1", "Role"): ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"):
        ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    ("apiregistration.k8s.io/v1", "APIService"):
        ("/apis/apiregistration.k8s.io/v1", "apiservices", False),
}
# Fields the server owns or fills in: never compared, never sent back on replace.
SERVER_FIELDS = ("status",)
SERVER_METADATA = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields",
                   "selfLink")


class ApiError(ProvisionerError):
    def __init__(self, status: int, message: str, reason: str = ""):
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Credentials:
    server: str          # https://host:6443
    ca_file: str
    cert_file: str
    key_file: str


def object_path(obj: dict, name: str | None = None) -> str:
    """The URL path of `obj` (or of its collection when name is '')."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    try:
        prefix, plural, namespaced = KINDS[(api_version, kind)]
    except KeyError:
        raise ProvisionerError(f"the provisioner does not know how to write {kind} "
                               f"({api_version}); add it to provisioner.kube.apiclient.KINDS") from None
    metadata = obj.get("metadata", {})
    path = prefix
    if namespaced:
        path += f"/namespaces/{metadata.get('namespace', 'default')}"
    path += f"/{plural}"
    name = metadata.get("name", "") if name is None else name
    return f"{path}/{name}" if name else path


def differs(wanted: Any, current: Any) -> bool:
    """True when `current` lacks or changes something `wanted` declares (defaults the server
    added are not differences)."""
    if isinstance(wanted, dict):
        if not isinstance(current, dict):
            return True
        return any(differs(value, current.get(key)) for key, value in wanted.items())
    if isinstance(wanted, list):
        if not isinstance(current, list) or len(wanted) != len(current):
            return True
        return any(differs(w, c) for w, c in zip(wanted, current))
    return wanted != current


class ApiClient:
    def __init__(self, credentials: Credentials, timeout: float = 15):
        self.credentials = credentials
        parts = urlsplit(credentials.server)
        self.host, self.port = parts.hostname, parts.port or 443
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=credentials.ca_file)
        self.context.load_cert_chain(credentials.cert_file, credentials.key_file)
        # kept-alive connections: a TLS handshake with client certificates costs both sides more
        # than most requests do, and the phases and verify's polls make hundreds of them
        self._idle: list[http.client.HTTPSConnection] = []
        self._idle_lock = threading.Lock()

    def _connection(self) -> tuple[http.client.HTTPSConnection, bool]:
        """(connection, reused)."""
        with self._idle_lock:
            if self._idle:
                return self._idle.pop(), True
        return http.client.HTTPSConnection(self.host, self.port, context=self.context,
                                           timeout=self.timeout), False

    def close(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _exchange(self, method: str, path: str, payload: bytes | None,
                  headers: dict[str, str]) -> tuple[int, bytes]:
        while True:
            connection, reused = self._connection()
            try:
                connection.request(method, path, body=payload, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    ssl.SSLEOFError):
                connection.close()
                if reused:
                    continue   # the server closed an idle kept-alive connection: a new one
                raise
            except BaseException:
                connection.close()
                raise
            if response.will_close:
                connection.close()
            else:
                with self._idle_lock:
                    self._idle.append(connection)
            return response.status, data

    def request(self, method: str, path: str, body: Any = None, query: dict | None = None,
                content_type: str = "application/json") -> dict:
        if query:
            path = f"{path}?{urlencode(query)}"
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", "User-Agent": "provisioner"}
        if payload is not None:
            headers["Content-Type"] = content_type
        try:
            status, data = self._exchange(method, path, payload, headers)
        except (OSError, http.client.HTTPException) as error:
            raise ApiError(0, f"cannot reach the API server at {self.credentials.server}: "
                              f"{error}") from error
        try:
            decoded = json.loads(data) if data else {}
        except ValueError:
            decoded = {"message": data.decode(errors="replace")[:200]}
        if status >= 400:
            raise ApiError(status, f"{method} {path}: {status} "
                                   f"{decoded.get('message', '')}".rstrip(), decoded.get("reason", ""))
        return decoded

    def get(self, path: str, query: dict | None = None) -> dict | None:
        """The object at `path`, or None when it does not exist."""
        try:
            return self.request("GET", path, query=query)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def ensure(self, obj: dict) -> str:
        """Create or replace `obj` so it holds what it declares: 'created', 'updated' or ''."""
        path = object_path(obj)
        current = self.get(path)
        if current is None:
            self.request("POST", object_path(obj, ""), obj)
            return "created"
        if not differs(declared(obj), current):
            return ""
        replacement = dict(obj)
        replacement["metadata"] = {**obj.get("metadata", {}),
                                   "resourceVersion": current["metadata"]["resourceVersion"]}
        self.request("PUT", path, replacement)
        return "updated"

    def patch(self, path: str, patch: dict) -> dict:
        return self.request("PATCH", path, patch,
                            content_type="application/strategic-merge-patch+json")

    def delete(self, path: str) -> bool:
        try:
            self.request("DELETE", path)
            return True
        except ApiError as error:
            if error.status == 404:
                return False
            raise

    def items(self, path: str, **query: str) -> Iterator[dict]:
        yield from (self.request("GET", path, query=query or None).get("items") or [])

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float,
                 interval: float = 0.25, detail: Callable[[], str] | None = None) -> Any:
        """Poll `check` until it returns something truthy; a clear error after `timeout`.
        (Polls are cheap on a kept-alive connection; each second of interval is half a second
        of every wait on average.)"""
        deadline = time.monotonic() + timeout
        last_error = ""
        while True:
            try:
                result = check()
                if result:
                    return result
            except ApiError as error:
                last_error = str(error)
            if time.monotonic() > deadline:
                extra = detail() if detail else last_error
                raise ProvisionerError(f"timed out after {timeout:.0f}s waiting for {what}"
                                       + (f": {extra}" if extra else ""))
            time.sleep(interval)


def declared(obj: dict) -> dict:
    declared = {key: value for key, value in obj.items() if key not in SERVER_FIELDS}
    metadata = {key: value for key, value in obj.get("metadata", {}).items()
                if key not in SERVER_METADATA}
    declared["metadata"] = metadata
    return declared
