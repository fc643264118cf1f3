"""API errors as Kubernetes `Status` objects.

Every failure a handler raises is an ApiError; the HTTP layer turns it into the JSON Status
clients parse (kubectl prints `message`, client-go switches on `reason` and `code`).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        """The Status as kube-apiserver encodes it: Go's field order (kind, apiVersion, metadata,
        status, message, reason, details, code) and its omitempty (no empty message, reason,
        details fields or causes; `group` is absent for core resources)."""
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
        if self.message:
            body["message"] = self.message
        if self.reason:
            body["reason"] = self.reason
        details = _details(self.details)
        if details:
            body["details"] = details
        if self.code:
            body["code"] = self.code
        return body

    # constructors named after Kubernetes' StatusReason values -------------------------------
    @classmethod
    def not_found(cls, resource: str, name: str, group: str = "") -> "ApiError":
        qual = f"{resource}.{group}" if group else resource
        return cls(404, "NotFound", f'{qual} "{name}" not found',
                   {"name": name, "group": group, "kind": resource})

    @classmethod
    def already_exists(cls, resource: str, name: str, group: str = "") -> "ApiError":
        qual = f"{resource}.{group}" if group else resource
        return cls(409, "AlreadyExists", f'{qual} "{name}" already exists',
                   {"name": name, "group": group, "kind": resource})

    @classmethod
    def conflict(cls, resource: str, name: str, group: str = "") -> "ApiError":
        qual = f"{resource}.{group}" if group else resource
        return cls(409, "Conflict",
                   f'Operation cannot be fulfilled on {qual} "{name}": the object has been '
                   "modified; please apply your changes to the latest version and try again",
                   {"name": name, "group": group, "kind": resource})

    @classmethod
    def bad_request(cls, message: str) -> "ApiError":
        return cls(400, "BadRequest", message)

    @classmethod
    def invalid(cls, kind: str, name: str, causes: list[tuple[str, str]], group: str = "") -> "ApiError":
        """causes: (field path, message) pairs, as field.ErrorList renders them."""
        qual = f"{kind}.{group}" if group else kind
        text = "; ".join(f"{f}: {m}" if f else m for f, m in causes)
        if len(causes) > 1:
            text = "[" + ", ".join(f"{f}: {m}" if f else m for f, m in causes) + "]"
        return cls(422, "Invalid", f'{qual} "{name}" is invalid: {text}', {
            "name": name, "group": group, "kind": kind,
            "causes": [{"reason": _cause_reason(m), "message": m, "field": f} for f, m in causes],
        })

    @classmethod
    def gone(cls, message: str) -> "ApiError":
        return cls(410, "Expired", message)

    @classmethod
    def timeout(cls, message: str) -> "ApiError":
        return cls(504, "Timeout", message)

    @classmethod
    def too_large_resource_version(cls, wanted: int, current: int) -> "ApiError":
        """504 with the ResourceVersionTooLarge cause client-go's reflector recognises and retries."""
        return cls(504, "Timeout", f"Too large resource version: {wanted}, current: {current}", {
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1})

    @classmethod
    def internal(cls, request_id: str) -> "ApiError":
        """An unexpected failure: the client gets an id to quote, the log gets the details (raw
        exception text can carry addresses, keys or stored data)."""
        return cls(500, "InternalError", "Internal error occurred: an unexpected error; request id "
                   f"{request_id} (the API server's log has the details)")

    @classmethod
    def unauthorized(cls) -> "ApiError":
        return cls(401, "Unauthorized", "Unauthorized")

    @classmethod
    def forbidden(cls, user: str, verb: str, resource: str, group: str, ns: str | None,
                  name: str | None = None) -> "ApiError":
        qual = f"{resource}.{group}" if group else resource
        what = f'{qual} "{name}"' if name else qual
        scope = f' in the namespace "{ns}"' if ns else " at the cluster scope"
        return cls(403, "Forbidden", f'{what} is forbidden: User "{user}" cannot {verb} '
                   f'resource "{resource}" in API group "{group}"{scope}',
                   {"name": name or "", "group": group, "kind": resource})

    @classmethod
    def method_not_allowed(cls, message: str = "the server does not allow this method on the "
                           "requested resource") -> "ApiError":
        return cls(405, "MethodNotAllowed", message)

    @classmethod
    def unsupported_media(cls, ctype: str) -> "ApiError":
        return cls(415, "UnsupportedMediaType", f'the body of the request was in an unknown '
                   f'format - accepted media types include: application/json, application/yaml, '
                   f'application/vnd.kubernetes.protobuf; got "{ctype}"')

    @classmethod
    def too_large(cls) -> "ApiError":
        return cls(413, "RequestEntityTooLarge", "the request entity is too large")


def _cause_reason(message: str) -> str:
    if message.startswith("Required value"):
        return "FieldValueRequired"
    if message.startswith("Unsupported value"):
        return "FieldValueNotSupported"
    if message.startswith("Duplicate value"):
        return "FieldValueDuplicate"
    if message.startswith("Forbidden"):
        return "FieldValueForbidden"
    return "FieldValueInvalid"


DETAIL_ORDER = ("name", "group", "kind", "uid", "causes", "retryAfterSeconds")
CAUSE_ORDER = ("reason", "message", "field")


def _details(details: dict | None) -> dict:
    """StatusDetails with Go's field order and omitempty."""
    if not details:
        return {}
    out: dict[str, Any] = {}
    for key in DETAIL_ORDER + tuple(k for k in details if k not in DETAIL_ORDER):
        value = details.get(key)
        if key == "causes" and isinstance(value, list):
            value = [{k: c[k] for k in CAUSE_ORDER + tuple(x for x in c if x not in CAUSE_ORDER) if c.get(k)}
                     for c in value if isinstance(c, dict)]
        if value not in (None, "", [], {}, 0):
            out[key] = value
    return out
