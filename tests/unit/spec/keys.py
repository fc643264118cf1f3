"""Real SSH key files for tests: the spec checks that a key is a private key paramiko can use.

Other unit tests that load a cluster spec write their key with `write_private_key` too:
`from tests.unit.spec.keys import write_private_key`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


@lru_cache(maxsize=1)
def private_key_bytes() -> bytes:
    """One unencrypted Ed25519 private key in OpenSSH format (what ssh-keygen writes)."""
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption())


def public_key_line() -> bytes:
    """The matching public key as an `ssh-ed25519 AAAA...` line (what a .pub file holds)."""
    key = serialization.load_ssh_private_key(private_key_bytes(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b" test\n"


def encrypted_key_bytes() -> bytes:
    """An Ed25519 private key protected by a passphrase."""
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(b"secret passphrase"))


def write_private_key(path: Path) -> Path:
    """Write a usable private key to `path` (0600, parents created); return `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(private_key_bytes())
    path.chmod(0o600)
    return path
