"""Fixtures for spec tests: a scratch directory as cwd, a real private key, and file writers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from .keys import write_private_key


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd = tmp_path, HOME = tmp_path/home (no default key), private key tmp_path/id_test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    write_private_key(tmp_path / "id_test")
    return tmp_path


@pytest.fixture
def write(workdir: Path) -> Callable[[str, Any], Path]:
    """write(name, data): a YAML file (data: dict/list dumped, or str written as is)."""

    def _write(name: str, data: Any) -> Path:
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
        return path

    return _write
