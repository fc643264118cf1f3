"""The daemon answers each known failure with the status its class calls for: input problems are
4xx (a bad build context is the client's fault, not the daemon's), unknown errors 500."""

from __future__ import annotations

import pytest

from provisioner.components.runtime.build.builder import BuildError
from provisioner.components.runtime.build.context import ContextError
from provisioner.components.runtime.build.dockerfile import DockerfileError
from provisioner.components.runtime.container.errors import ContainerError
from provisioner.components.runtime.daemon.app import status_of as _status_of
from provisioner.components.runtime.daemon.errors import Conflict, NotFound
from provisioner.components.runtime.images.errors import ImageNotFound, InvalidReference
from provisioner.components.runtime.net.errors import NetworkError, PortInUse


@pytest.mark.parametrize("error, status", [
    (NotFound("no such container: x"), 404),
    (Conflict("name in use"), 409),
    (ImageNotFound("no such image: nope"), 404),
    (InvalidReference("invalid reference format"), 400),
    (BuildError("Step 2/3: COPY missing: not found"), 400),
    (DockerfileError("Dockerfile", 1, "unknown instruction: FORM"), 400),
    (ContextError("source '../x' is outside the build context"), 400),
    (PortInUse("port 8080 is already allocated"), 409),
    (NetworkError("bad subnet"), 400),
    (ContainerError("exec format error"), 500),
], ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value))
def test_known_failures_get_their_status_and_message(error, status):
    assert _status_of(error) == (status, str(error))


def test_an_unknown_error_is_left_to_the_500_handler():
    assert _status_of(KeyError("x")) is None
