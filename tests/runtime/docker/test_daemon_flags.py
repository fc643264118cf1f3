"""The daemon's Docker-related flags refuse bad values with one clear line, before starting."""

from __future__ import annotations

import subprocess
import sys


def _daemon(*args: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provisioner.components.runtime.cli", "daemon",
                           "--root", str(tmp_path / "root"), "--socket",
                           str(tmp_path / "runtime.sock"), *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_bad_registry_urls_are_refused(tmp_path):
    for flag in ("--registry-mirror", "--default-registry"):
        result = _daemon(flag, "ftp://mirror.example", tmp_path=tmp_path)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            f"Error: invalid {flag} 'ftp://mirror.example': use a URL such as "
            "https://mirror.example or http://127.0.0.1:5000"]
        assert not (tmp_path / "root").exists()
