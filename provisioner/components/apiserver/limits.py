"""Size limits as kube-apiserver sets them, with its messages.

- A request body is read whole up to 3 MiB (kube-apiserver's default --max-request-bytes for
  JSON); a larger one is refused with 413 before it is parsed, so a big object is never mistaken
  for a truncated one ("Unterminated string").
- A ConfigMap's data plus binaryData, and a Secret's data (stringData counted as it will be stored),
  hold at most 1 MiB (corev1.MaxSecretSize): 422.
- An object's annotations, keys and values together, hold at most 256 KiB: 422.

`read_body` is what rest.py reads bodies with; `check` runs as an admission hook
(Registry.admission, installed by server.py) on every create and update, whichever path
(POST, PUT, PATCH, apply) produced the object.
"""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from .apirequest import Req
from .errors import ApiError

MAX_REQUEST_BODY = 3 * 1024 * 1024
MAX_DATA_SIZE = 1024 * 1024  # corev1.MaxSecretSize, for ConfigMaps too
MAX_ANNOTATIONS_SIZE = 256 * 1024  # apimachinery's TotalAnnotationSizeLimitB
READ_CHUNK = 64 * 1024
BODY_KEY = "request_body"  # the body read, kept on the request for the audit log


def too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


async def read_body(request: web.Request, limit: int = MAX_REQUEST_BODY) -> bytes:
    """The whole request body, or 413 once it passes `limit` (declared or actually sent)."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(READ_CHUNK)
        if not chunk:
            body = request[BODY_KEY] = b"".join(chunks)
            return body
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)


def _decoded_size(value: object) -> int:
    """Bytes a base64 data value stands for (what kube-apiserver counts), or its own length."""
    if not isinstance(value, str):
        return 0
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return len(value.encode())  # not base64: validation refuses it on its own terms


def _text_size(values: object) -> int:
    return sum(len(v.encode()) for v in (values or {}).values() if isinstance(v, str)) \
        if isinstance(values, dict) else 0


def _binary_size(values: object) -> int:
    return sum(_decoded_size(v) for v in values.values()) if isinstance(values, dict) else 0


# kind -> (field path kube-apiserver names, size of the object's data)
DATA_LIMITS = {
    "ConfigMap": ("[]", lambda obj: _text_size(obj.get("data")) + _binary_size(obj.get("binaryData"))),
    "Secret": ("data", lambda obj: _binary_size(obj.get("data")) + _text_size(obj.get("stringData"))),
}


def violations(kind: str, obj: dict) -> list[tuple[str, str]]:
    """(field, message) pairs for every limit `obj` passes; empty when it is within them all."""
    out = []
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if isinstance(annotations, dict):
        size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items())
        if size > MAX_ANNOTATIONS_SIZE:
            out.append(("metadata.annotations", f"Too long: may not be more than {MAX_ANNOTATIONS_SIZE} bytes"))
    if kind in DATA_LIMITS:
        field, measure = DATA_LIMITS[kind]
        if measure(obj) > MAX_DATA_SIZE:
            out.append((field, f"Too long: may not be more than {MAX_DATA_SIZE} bytes"))
    return out


async def check(req: Req, obj: dict) -> None:
    """Admission hook: 422 Invalid, named as kube-apiserver names it, when a limit is passed."""
    kind = obj.get("kind") or req.res.kind
    causes = violations(kind, obj)
    if causes:
        raise ApiError.invalid(kind, (obj.get("metadata") or {}).get("name", ""), causes, req.res.group)
