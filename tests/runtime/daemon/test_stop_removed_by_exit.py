"""A stop that races the container's auto-remove: the exit it caused removed the container (and
its state) before the stop read the exit. Docker answers that stop with success; so does the
daemon. Hermetic: the container core, which signals and waits for processes, is replaced at
that boundary by one whose state is gone, as auto-remove leaves it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from provisioner.components.runtime.container.errors import ContainerError
from provisioner.components.runtime.daemon import containers as service


def stopping(monkeypatch, auto_remove: bool):
    record = SimpleNamespace(id="c1", name="web", auto_remove=auto_remove)
    daemon = service.ContainerService.__new__(service.ContainerService)
    monkeypatch.setattr(daemon, "find", lambda key: record, raising=False)
    monkeypatch.setattr(daemon, "is_running", lambda r: True, raising=False)
    monkeypatch.setattr(daemon, "directory", lambda r: "/state/c1", raising=False)

    def state_removed_meanwhile(state_dir: str, grace_seconds: float):
        raise ContainerError(f"no container state in {state_dir}: the container does not exist "
                             "or was deleted")
    monkeypatch.setattr(service.core, "stop", state_removed_meanwhile)
    return asyncio.run(daemon.stop("web", 0))


def test_an_auto_remove_container_removed_by_the_exit_its_stop_caused_is_stopped(monkeypatch):
    assert stopping(monkeypatch, auto_remove=True).status == "exited"


def test_any_other_container_whose_state_vanished_is_still_an_error(monkeypatch):
    with pytest.raises(ContainerError, match="no container state"):
        stopping(monkeypatch, auto_remove=False)
