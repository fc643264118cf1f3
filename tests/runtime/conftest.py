"""Fixtures shared by the runtime's test packages (images, daemon)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def token_registry(tmp_path):
    """Debian's docker-registry on loopback behind a token server (`registry.tokens`)."""
    from .images.registry_fixtures import TokenServer, start_registry

    directory = tmp_path / "registry-token"
    os.makedirs(directory)
    tokens = TokenServer(str(directory))
    registry = start_registry(str(directory), token_realm=tokens.realm,
                              token_cert=tokens.cert_path)
    registry.tokens = tokens
    yield registry
    registry.stop()
    tokens.stop()
