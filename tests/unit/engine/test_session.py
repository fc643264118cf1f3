"""The engine's preview / apply / change logic, run for real on this machine.

pyinfra's `@local` connector stands in for SSH (the transport is the only difference; the
facts, operations and commands are the real ones), in a scratch directory.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from pyinfra.operations import files, server

from provisioner.engine.archive import FileContent
from provisioner.engine.session import HostCommandError, Session

HOST = SimpleNamespace(name="@local", address="127.0.0.1",
                       ssh=SimpleNamespace(user="root", port=22, key=Path("/nonexistent")))


class LocalSession(Session):
    """A Session whose one host is this machine through pyinfra's local connector."""

    def _pin_host_keys(self) -> None:
        pass  # nothing to pin without SSH

    def _inventory_hosts(self) -> list:
        return [("@local", {"_sudo": False})]


def session() -> LocalSession:
    return LocalSession([HOST], Path("/nonexistent/known_hosts"))


def test_a_new_file_is_previewed_with_its_content_then_placed_then_unchanged(tmp_path):
    target = tmp_path / "etc" / "unit.service"
    with session() as s:
        s.op(HOST, "directory", files.directory, path=str(target.parent))
        s.put(HOST, "unit", str(target), "[Unit]\nDescription=x\n", mode="640")
        preview = s.preview()
    assert preview.by_host == {"@local": ["directory", "unit"]}
    assert preview.details[("@local", "unit")][2:] == ["@@ -0,0 +1,2 @@", "+[Unit]",
                                                       "+Description=x"]
    assert not target.exists()  # a preview changes nothing

    with session() as s:
        s.op(HOST, "directory", files.directory, path=str(target.parent))
        s.put(HOST, "unit", str(target), "[Unit]\nDescription=x\n", mode="640")
        applied = s.apply()
    assert applied.by_host == {"@local": ["directory", "unit"]}
    assert target.read_text() == "[Unit]\nDescription=x\n"
    assert target.stat().st_mode & 0o777 == 0o640

    with session() as s:
        s.put(HOST, "unit", str(target), "[Unit]\nDescription=x\n", mode="640")
        assert s.preview().count == 0
    with session() as s:
        s.put(HOST, "unit", str(target), "[Unit]\nDescription=x\n", mode="640")
        assert s.apply().count == 0


def test_a_changed_file_shows_a_unified_diff_and_a_secret_shows_none(tmp_path):
    unit, key = tmp_path / "etcd.service", tmp_path / "server.key"
    unit.write_text("a\nb\n")
    key.write_text("old secret\n")
    with session() as s:
        s.put(HOST, "unit", str(unit), "a\nc\n", mode="644")
        s.put(HOST, "place key", str(key), "new secret\n", mode="600", show=False)
        preview = s.preview()
    assert preview.by_host == {"@local": ["unit", "place key"]}
    diff = preview.details[("@local", "unit")]
    assert diff[0] == f"--- @local:{unit}" and diff[1] == f"+++ @local:{unit} (desired)"
    assert diff[3:] == [" a", "-b", "+c"]
    assert ("@local", "place key") not in preview.details
    assert "secret" not in repr(preview)
    assert unit.read_text() == "a\nb\n"


def test_a_mode_change_alone_says_so_instead_of_an_empty_diff(tmp_path):
    unit = tmp_path / "etcd.service"
    unit.write_text("same\n")
    unit.chmod(0o600)
    with session() as s:
        s.put(HOST, "unit", str(unit), "same\n", mode="644")
        preview = s.preview()
    assert preview.details[("@local", "unit")] == ["content unchanged; mode or owner differs"]


def test_an_operation_conditioned_on_another_counts_only_if_that_one_changes(tmp_path):
    unit = tmp_path / "etcd.service"
    unit.write_text("same\n")
    with session() as s:
        meta = s.put(HOST, "unit", str(unit), "same\n", mode=f"{unit.stat().st_mode & 0o777:o}")
        s.op(HOST, "restart", server.shell, commands=["true"], _if=meta.did_change)
        assert s.preview().count == 0
    with session() as s:
        meta = s.put(HOST, "unit", str(unit), "changed\n", mode="644")
        s.op(HOST, "restart", server.shell, commands=[f"touch {tmp_path}/restarted"],
             _if=meta.did_change)
        assert s.preview().by_host == {"@local": ["unit", "restart"]}
    with session() as s:
        meta = s.put(HOST, "unit", str(unit), "changed\n", mode="644")
        s.op(HOST, "restart", server.shell, commands=[f"touch {tmp_path}/restarted"],
             _if=meta.did_change)
        assert s.apply().by_host == {"@local": ["unit", "restart"]}
    assert (tmp_path / "restarted").exists()


def test_files_already_in_place_are_left_untouched_and_only_the_others_placed(tmp_path):
    wanted = {f"f{i}.conf": f"content {i}\n" for i in range(5)}
    for name, text in wanted.items():
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o644)
    (tmp_path / "f3.conf").write_text("drifted\n")
    (tmp_path / "f4.conf").chmod(0o600)
    before = {name: (tmp_path / name).stat().st_mtime_ns for name in wanted}
    with session() as s:
        placed = {name: s.put(HOST, name, str(tmp_path / name), text, mode="644")
                  for name, text in wanted.items()}
        s.op(HOST, "restart", server.shell, commands=[f"touch {tmp_path}/restarted"],
             _if=placed["f0.conf"].did_change)
        changes = s.apply()
    assert changes.by_host == {"@local": ["f3.conf", "f4.conf"]}
    assert not placed["f0.conf"].did_change() and placed["f3.conf"].did_change()
    assert not (tmp_path / "restarted").exists()
    assert {name: (tmp_path / name).read_text() for name in wanted} == wanted
    assert (tmp_path / "f4.conf").stat().st_mode & 0o777 == 0o644
    for name in ("f0.conf", "f1.conf", "f2.conf"):
        assert (tmp_path / name).stat().st_mtime_ns == before[name]


def test_files_differing_names_only_what_is_not_already_in_place(tmp_path):
    same, drifted, loose = tmp_path / "same.conf", tmp_path / "drifted.conf", tmp_path / "loose.key"
    for path in (same, drifted, loose):
        path.write_text("wanted\n")
        path.chmod(0o600)
    drifted.write_text("changed by hand\n")
    loose.chmod(0o644)
    wanted = [FileContent(str(path), b"wanted\n", "600")
              for path in (same, drifted, loose, tmp_path / "missing.conf")]
    with session() as s:
        differing = s.files_differing({"@local": wanted})
    assert [f.path for f in differing["@local"]] == [
        str(drifted), str(loose), str(tmp_path / "missing.conf")]
    with session() as s:
        assert s.files_differing({"@local": wanted[:1]}) == {}


def test_a_failed_operation_names_the_host_and_what_it_was_doing(tmp_path):
    with session() as s:
        s.op(HOST, "start the member", server.shell, commands=["echo broken >&2; exit 3"])
        with pytest.raises(HostCommandError) as raised:
            s.apply()
    assert raised.value.message == "@local: start the member failed"
    assert "broken" in (raised.value.output or "")


def test_commands_report_output_and_failure_per_host():
    with session() as s:
        ok = s.run("echo hello")["@local"]
        failed = s.run("echo nope >&2; exit 2")["@local"]
        assert s.check(HOST, "echo fine", "checking") == "fine"
        with pytest.raises(HostCommandError, match="checking on @local failed"):
            s.check(HOST, "exit 1", "checking")
    assert (ok.ok, ok.stdout) == (True, "hello")
    assert (failed.ok, failed.stderr.strip()) == (False, "nope")
