"""Encryption at rest from an EncryptionConfiguration file (--encryption-provider-config).

As kube-apiserver: the first provider listed for a resource encrypts new writes, every listed
provider can read; encrypted values start with `k8s:enc:<provider>:v1:<key name>:`. Supported
providers: aescbc (IV + AES-CBC/PKCS#7), aesgcm (nonce + AES-GCM with the etcd key as authenticated
data, as kube-apiserver, so each can read what the other wrote), identity.
"""

from __future__ import annotations

import base64
import os

import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import ApiError
from .storage import Transformer

# read aesgcm values stored before the etcd key was bound as authenticated data
LEGACY_UNBOUND_GCM = True


class _Key:
    def __init__(self, provider: str, name: str, secret: bytes):
        if len(secret) not in (16, 24, 32):
            raise ValueError(f"{provider} key {name!r}: must be 16, 24 or 32 bytes, got {len(secret)}")
        self.provider, self.name, self.secret = provider, name, secret
        self.prefix = f"k8s:enc:{provider}:v1:{name}:".encode()

    def encrypt(self, data: bytes, key: bytes) -> bytes:
        if self.provider == "aesgcm":
            # the etcd key is authenticated data, as kube-apiserver binds it: a value copied
            # under another key does not decrypt
            nonce = os.urandom(12)
            return self.prefix + nonce + AESGCM(self.secret).encrypt(nonce, data, key)
        iv = os.urandom(16)
        padder = padding.PKCS7(128).padder()
        enc = Cipher(algorithms.AES(self.secret), modes.CBC(iv)).encryptor()
        return self.prefix + iv + enc.update(padder.update(data) + padder.finalize()) + enc.finalize()

    def decrypt(self, data: bytes, key: bytes) -> bytes:
        body = data[len(self.prefix):]
        if self.provider == "aesgcm":
            try:
                return AESGCM(self.secret).decrypt(body[:12], body[12:], key)
            except InvalidTag:
                if not LEGACY_UNBOUND_GCM:
                    raise
                # written by an earlier version of this server, without the key bound; the next
                # write of the object binds it
                return AESGCM(self.secret).decrypt(body[:12], body[12:], None)
        dec = Cipher(algorithms.AES(self.secret), modes.CBC(body[:16])).decryptor()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(dec.update(body[16:]) + dec.finalize()) + unpadder.finalize()


class EncryptionTransformer(Transformer):
    def __init__(self, rules: dict[str, list[_Key | None]]):
        self.rules = rules  # resource -> providers in order; None is identity

    def to_storage(self, resource: str, data: bytes, key: bytes = b"") -> bytes:
        providers = self.rules.get(resource) or self.rules.get("*.*") or [None]
        first = providers[0]
        return data if first is None else first.encrypt(data, key)

    def from_storage(self, resource: str, data: bytes, key: bytes = b"") -> bytes:
        if not data.startswith(b"k8s:enc:"):
            return data
        # errors name the provider and key of the stored value, never its bytes
        prefix = b":".join(data.split(b":", 5)[:5]).decode(errors="replace")
        for provider in self.rules.get(resource, []) + self.rules.get("*.*", []):
            if provider is not None and data.startswith(provider.prefix):
                try:
                    return provider.decrypt(data, key)
                except Exception:  # wrong key material or a damaged value
                    raise _transform_error(f"{prefix} value of {resource} does not decrypt") from None
        raise _transform_error(f"no key to decrypt stored {resource} value (written with {prefix})")


def _transform_error(detail: str) -> ApiError:
    """A value this server cannot decrypt: its configuration lacks the key it was written with."""
    return ApiError(500, "InternalError", f"Internal error occurred: unable to transform key: {detail}; "
                    "check --encryption-provider-config")


def load(path: str) -> EncryptionTransformer:
    with open(path) as fh:
        doc = yaml.safe_load(fh)
    if not isinstance(doc, dict) or doc.get("kind") != "EncryptionConfiguration":
        raise ValueError(f"{path}: not an EncryptionConfiguration")
    rules: dict[str, list[_Key | None]] = {}
    for entry in doc.get("resources") or []:
        providers: list[_Key | None] = []
        for p in entry.get("providers") or []:
            (name, conf), = p.items()
            if name == "identity":
                providers.append(None)
            elif name in ("aescbc", "aesgcm"):
                for k in (conf or {}).get("keys") or []:
                    providers.append(_Key(name, k["name"], base64.b64decode(k["secret"])))
            else:
                raise ValueError(f"{path}: unsupported provider {name!r}")
        for res in entry.get("resources") or []:
            if res == "*.*":
                rules[res] = providers
                continue
            plural, _, group = res.partition(".")
            rules[plural] = providers  # a built-in kind, kept by plural
            if group:
                rules[f"{group}/{plural}"] = providers  # a custom resource (Resource.store)
    return EncryptionTransformer(rules)
