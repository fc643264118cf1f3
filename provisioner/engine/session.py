"""One pyinfra run over a set of hosts: connect, collect operations, run them, report changes.

A phase opens a `Session`, asks for facts (`session.run`), adds operations with a description
(`session.op`), then calls `apply()` (or `preview()` for --dry-run). Operations are pyinfra's:
they read facts first and only emit commands for what differs, so an unchanged host reports no
change. Every host runs in parallel (pyinfra's gevent pool); the CLI monkey-patches gevent
before anything opens a socket.
"""

from __future__ import annotations

import atexit
import base64
import difflib
import io
import logging
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gevent
from pyinfra.api import Config, Inventory, State
from pyinfra.api.command import StringCommand
from pyinfra.api.connect import connect_all
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operation import add_op
from pyinfra.api.operations import _run_host_ops
from pyinfra.operations import files

from provisioner.engine.archive import (
    EXTRACT,
    FileContent,
    file_probe,
    in_place,
    parse_file_probe,
    tar_of,
)
from provisioner.engine.hostkeys import UnreachableError, pin_host_keys
from provisioner.errors import ProvisionerError


class SSHTarget(Protocol):
    """What the engine needs to know about a host (the spec's Host satisfies it)."""

    name: str
    address: str

    @property
    def ssh(self) -> Any: ...


class HostCommandError(ProvisionerError):
    """A command or operation failed on a host."""


@dataclass
class CommandResult:
    ok: bool
    stdout: str
    stderr: str
    exit_code: int | None = None


@dataclass
class _Recorded:
    host: str
    description: str
    meta: Any  # pyinfra OperationMeta
    # Operations this one runs only after (its `_if=other.did_change`); a preview must not count
    # it as a change unless they would change too.
    only_if_changed: list[Any] = field(default_factory=list)
    # For a file placed with `put`: its path and, when it may be shown, its desired text.
    path: str | None = None
    shown: str | None = None


class PlacedFile:
    """What `Session.put` returns: the file's pyinfra OperationMeta once its batch is resolved
    (`meta`), or None when the host already held the file as wanted (no operation at all).
    `_if=placed.did_change` works on it as on an OperationMeta."""

    def __init__(self) -> None:
        self.meta: Any = None

    @property
    def will_change(self) -> bool:
        return bool(self.meta is not None and self.meta.will_change)

    def did_change(self) -> bool:
        return bool(self.meta is not None and self.meta.did_change())


@dataclass
class _PendingPut:
    host: SSHTarget
    description: str
    dest: str
    data: bytes
    mode: str
    user: str
    group: str
    show: bool
    placed: PlacedFile


@dataclass
class HostChanges:
    """What an apply (or a preview) changed on each host, as operation descriptions."""

    by_host: dict[str, list[str]] = field(default_factory=dict)
    # A preview's lines under one change, keyed (host, description): a rendered file's diff.
    details: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def add(self, host: str, description: str) -> None:
        self.by_host.setdefault(host, []).append(description)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.by_host.values())


def _quiet_pyinfra(verbose: bool) -> None:
    # pyinfra logs through the standard logging module; its own formatting and colours would
    # interleave with ours, so it only speaks when the user asked for -v.
    logging.getLogger("pyinfra").setLevel(logging.DEBUG if verbose else logging.CRITICAL)


class Session:
    """A connected pyinfra State over `hosts`; use as a context manager."""

    def __init__(self, hosts: Sequence[SSHTarget], known_hosts: Path, *, verbose: bool = False):
        if not hosts:
            raise ValueError("a session needs at least one host")
        self.hosts = list(hosts)
        self.known_hosts = known_hosts
        self.verbose = verbose
        self._recorded: list[_Recorded] = []
        self._pending_puts: list[_PendingPut] = []
        self.state: State | None = None
        self._by_name: dict[str, Any] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> "Session":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pin_host_keys(self) -> None:
        pin_host_keys([h for h in self.hosts if _POOL.get(self._pool_key(h)) is None],
                      self.known_hosts)

    def _pool_key(self, host: SSHTarget) -> tuple:
        return (host.address, host.ssh.port, host.ssh.user, str(host.ssh.key),
                str(self.known_hosts))

    def _inventory_hosts(self) -> list[tuple[str, dict[str, Any]]]:
        """pyinfra's (name, data) for each host: how to reach it over SSH."""
        return [(host.name, pyinfra_host_data(host, self.known_hosts)) for host in self.hosts]

    def open(self) -> None:
        _quiet_pyinfra(self.verbose)
        self._pin_host_keys()
        inventory = Inventory((self._inventory_hosts(), {}))
        config = Config(CONNECT_TIMEOUT=10, FAIL_PERCENT=None)
        # Facts are read once, when an operation runs (or when a preview asks): pyinfra's
        # default also runs every operation while it is added, one host after another, which
        # read each fact twice and planned hosts serially.
        self.state = State(inventory, config, check_for_changes=False)
        errors: dict[str, str] = {}

        def remember_error(state: State, host: Any, error: Exception) -> None:
            errors[host.name] = str(error.args[0] if error.args else error)

        from pyinfra.api.state import BaseStateCallback

        class _Errors(BaseStateCallback):
            host_connect_error = staticmethod(remember_error)

        self.state.add_callback_handler(_Errors())
        by_name = {host.name: host for host in self.hosts}
        for pyhost in self.state.inventory:
            client = _POOL.get(self._pool_key(by_name[pyhost.name]))
            if client is not None and hasattr(pyhost.connector, "client"):
                pyhost.connector.client = client
                pyhost.connected = True  # connect_all activates it without a new login
        try:
            connect_all(self.state)
        except PyinfraError:
            pass  # every host failed; reported below with each host's reason
        if errors:
            self.close()
            lines = []
            for name, reason in sorted(errors.items()):
                spec_host = next(h for h in self.hosts if h.name == name)
                hint = _connect_hint(reason, spec_host)
                lines.append(f"host {name} ({spec_host.ssh.user}@{spec_host.address}): {reason}{hint}")
            raise UnreachableError("cannot log in over SSH:\n  " + "\n  ".join(lines))
        self._by_name = {host.name: host for host in self.state.inventory}
        for pyhost in self.state.inventory:
            client = getattr(pyhost.connector, "client", None)
            if client is not None:
                _POOL.put(self._pool_key(by_name[pyhost.name]), client)
        self._check_sudo()

    def _check_sudo(self) -> None:
        """Hosts reached as a non-root user must have passwordless sudo.

        Checked once up front with `sudo -n`: otherwise pyinfra, seeing sudo ask for a password,
        would prompt on the terminal, which a provisioning run must never do.
        """
        users = [host for host in self.hosts if needs_sudo(host)]
        if not users:
            return
        # sudo's own "a password is required" line must not reach pyinfra, which would
        # answer it with a password prompt; prefixed, it is only our message.
        results = self.run('out=$(sudo -n true 2>&1) || { echo "sudo refused: $out" >&2; exit 1; }',
                           users, as_root=False)
        problems = []
        for host in users:
            result = results[host.name]
            if not result.ok:
                reason = (result.stderr or result.stdout).strip().splitlines()
                problems.append(
                    f"host {host.name}: user {host.ssh.user!r} cannot run commands as root with "
                    f"sudo without a password ({reason[-1] if reason else 'sudo failed'}); give it "
                    "passwordless sudo, or use root in the spec"
                )
        if problems:
            self.close()
            raise ProvisionerError("hosts refuse root access:\n  " + "\n  ".join(problems))

    def close(self) -> None:
        """Ends this session; its SSH connections stay open for the next session of this
        process (close_connections() ends them, as does the process's exit)."""
        if self.state is None:
            return
        for pyhost in self.state.activated_hosts:
            if getattr(pyhost.connector, "client", None) is None:
                pyhost.disconnect()
            else:
                _close_file_transfer(pyhost.connector)


    # -- facts and commands ----------------------------------------------------------------

    def run(self, command: str, hosts: Sequence[SSHTarget] | None = None, *,
            as_root: bool = True) -> dict[str, CommandResult]:
        """Run a read-only shell command on hosts in parallel; return each host's result.

        As root by default (through sudo for non-root users); `as_root=False` runs it as the
        SSH user itself."""
        return self._run_each({h.name: command for h in (hosts or self.hosts)}, as_root=as_root)

    def _run_each(self, commands: dict[str, str], *, as_root: bool = True) -> dict[str, CommandResult]:
        """Each named host's own read-only command, hosts in parallel; each host's result."""
        assert self.state is not None

        def one(pyhost: Any, command: str) -> CommandResult:
            try:
                ok, output = pyhost.run_shell_command(StringCommand(command),
                                                      _sudo=as_root and pyhost.data._sudo)
            except Exception as exc:  # noqa: BLE001 - a transport failure is this host's result
                return CommandResult(False, "", f"{type(exc).__name__}: {exc}")
            return CommandResult(ok, output.stdout, output.stderr)

        greenlets = {name: self.state.pool.spawn(one, self._by_name[name], command)
                     for name, command in commands.items()}
        gevent.joinall(list(greenlets.values()))
        return {name: g.get() for name, g in greenlets.items()}

    def files_differing(self, files: dict[str, Sequence[FileContent]]) -> dict[str, list[FileContent]]:
        """Each host's files that are not already there as wanted (content, mode, root:root),
        from one probe per host; hosts with none are left out."""
        found = {name: parse_file_probe(result.stdout) if result.ok else {}
                 for name, result in self._run_each({
                     name: file_probe([f.path for f in wanted])
                     for name, wanted in files.items() if wanted}).items()}
        differing = {name: [f for f in wanted
                            if not in_place(found.get(name, {}), f.path, f.content, f.mode)]
                     for name, wanted in files.items()}
        return {name: wrong for name, wrong in differing.items() if wrong}

    def write_files(self, files: dict[str, Sequence[FileContent]], *,
                    private_dirs: bool = True) -> dict[str, CommandResult]:
        """Place each host's files (root-owned; their directories 0700 unless `private_dirs`
        is False) in one round trip per host, all hosts in parallel (engine/archive.py says
        how); each host's result."""
        assert self.state is not None

        def one(pyhost: Any) -> CommandResult:
            encoded = base64.encodebytes(tar_of(files[pyhost.name], private_dirs)).decode()
            try:
                ok, output = pyhost.run_shell_command(StringCommand(EXTRACT), _stdin=encoded,
                                                      _sudo=pyhost.data._sudo)
            except Exception as exc:  # noqa: BLE001 - a transport failure is this host's result
                return CommandResult(False, "", f"{type(exc).__name__}: {exc}")
            return CommandResult(ok, output.stdout, output.stderr)

        greenlets = {name: self.state.pool.spawn(one, self._by_name[name])
                     for name, placed in files.items() if placed}
        gevent.joinall(list(greenlets.values()))
        return {name: g.get() for name, g in greenlets.items()}

    def place_files(self, files: dict[str, Sequence[FileContent]], what: str, *,
                    private_dirs: bool = True) -> None:
        """write_files, raising for the first host that failed, naming it and `what`."""
        results = self.write_files(files, private_dirs=private_dirs)
        failed = sorted((name, result) for name, result in results.items() if not result.ok)
        if failed:
            name, result = failed[0]
            raise HostCommandError(f"placing {what} on {name} failed", command=f"tar -x of its {what}",
                                   output=result.stderr or result.stdout)

    def run_one(self, host: SSHTarget, command: str) -> CommandResult:
        return self.run(command, [host])[host.name]

    def check(self, host: SSHTarget, command: str, what: str) -> str:
        """Run a command that must succeed; return stdout or raise naming host and intent."""
        result = self.run_one(host, command)
        if not result.ok:
            raise HostCommandError(
                f"{what} on {host.name} failed", command=command, output=result.stderr or result.stdout
            )
        return result.stdout

    # -- operations ------------------------------------------------------------------------

    def op(self, host: SSHTarget, description: str, op_func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Add a pyinfra operation for one host; returns its OperationMeta."""
        assert self.state is not None
        self._flush_puts()        # files put before this operation come before it
        pyhost = self._by_name[host.name]
        results = add_op(self.state, op_func, *args, host=pyhost, name=description, **kwargs)
        meta = results[pyhost]
        self._recorded.append(_Recorded(host.name, description, meta, _change_conditions(kwargs.get("_if"))))
        return meta

    def put(self, host: SSHTarget, description: str, dest: str, content: str | bytes, *,
            mode: str, show: bool = True, user: str = "root", group: str = "root") -> Any:
        """Place a file with exactly `content`; returns its OperationMeta.

        `show=False` for certificates and keys: a preview then says the file would be placed
        but never shows (or diffs) what is in it."""
        data = content.encode() if isinstance(content, str) else content
        placed = PlacedFile()
        self._pending_puts.append(_PendingPut(host, description, dest, data, mode, user, group,
                                              show, placed))
        return placed

    def _flush_puts(self) -> None:
        """Resolve the puts waiting since the last operation: one probe per host says which
        files are already in place (content, mode, owner); only the others become pyinfra
        operations. pyinfra's files.put would read two facts per file, one round trip each."""
        pending, self._pending_puts = self._pending_puts, []
        if not pending:
            return
        paths: dict[str, list[str]] = {}
        for put in pending:
            paths.setdefault(put.host.name, []).append(put.dest)
        found = {name: parse_file_probe(result.stdout) if result.ok else {}
                 for name, result in self._run_each({name: file_probe(wanted)
                                                     for name, wanted in paths.items()}).items()}
        for put in pending:
            if in_place(found.get(put.host.name, {}), put.dest, put.data, put.mode, put.user,
                        put.group):
                continue
            put.placed.meta = self.op(put.host, put.description, files.put,
                                      src=io.BytesIO(put.data), dest=put.dest, mode=put.mode,
                                      user=put.user, group=put.group)
            self._recorded[-1].path = put.dest
            if put.show:
                self._recorded[-1].shown = put.data.decode("utf-8", errors="replace")

    def preview(self) -> HostChanges:
        """What apply() would change, from facts read now, with a unified diff for each
        shown file that would change; changes nothing."""
        self._flush_puts()
        changes = HostChanges()
        from pyinfra.context import ctx_host, ctx_state

        assert self.state is not None
        changed: list[_Recorded] = []
        with ctx_state.use(self.state):
            for rec in self._recorded:
                with ctx_host.use(self._by_name[rec.host]):
                    if rec.meta.will_change and all(m.will_change for m in rec.only_if_changed):
                        changes.add(rec.host, rec.description)
                        changed.append(rec)
        shown = [rec for rec in changed if rec.shown is not None and rec.path]
        if shown:
            current = self._read_files(sorted({rec.path for rec in shown if rec.path}))
            for rec in shown:
                assert rec.path is not None and rec.shown is not None
                before = current.get(rec.host, {}).get(rec.path)
                changes.details[(rec.host, rec.description)] = unified_diff(
                    rec.host, rec.path, before, rec.shown) or ["content unchanged; mode or owner differs"]
        self._recorded.clear()
        return changes

    def _read_files(self, paths: list[str]) -> dict[str, dict[str, str | None]]:
        """Each host's current text of `paths` (None where a file is missing), in one round
        trip per host."""
        quoted = " ".join(shlex.quote(p) for p in paths)
        command = (f'for f in {quoted}; do if [ -f "$f" ]; then printf "%s " "$f"; base64 -w0 "$f"; '
                   'echo; fi; done; true')
        found: dict[str, dict[str, str | None]] = {}
        for name, result in self.run(command).items():
            files_there: dict[str, str | None] = {}
            for line in result.stdout.splitlines():
                path, _, encoded = line.partition(" ")
                try:
                    files_there[path] = base64.b64decode(encoded).decode("utf-8", errors="replace")
                except ValueError:
                    continue
            found[name] = files_there
        return found

    def apply(self) -> HostChanges:
        """Run the collected operations on all hosts; raise naming each host that failed."""
        assert self.state is not None
        self._flush_puts()
        if not self._recorded:
            return HostChanges()
        self._run_all_hosts()
        changes = HostChanges()
        failures: list[str] = []
        output = ""
        for rec in self._recorded:
            if not rec.meta.is_complete():
                continue
            if rec.meta.did_error():
                failures.append(f"{rec.host}: {rec.description}")
                output = output or rec.meta.stderr or rec.meta.stdout
            elif rec.meta.did_change():
                changes.add(rec.host, rec.description)
        self._recorded.clear()
        if failures:
            raise HostCommandError("; ".join(failures) + " failed", output=output)
        return changes


    def _run_host(self, pyhost: Any) -> None:
        try:
            _run_host_ops(self.state, pyhost)
        except PyinfraError:
            pass  # the failed operation is read from its meta by apply()

    def _run_all_hosts(self) -> None:
        """Each host runs its operations in order without waiting for the others between
        operations (they never depend on another host's: cross-host steps are plan actions)."""
        from pyinfra.context import ctx_state

        assert self.state is not None
        self.state.is_executing = True
        with ctx_state.use(self.state):
            hosts = [h for h in self.state.inventory.get_active_hosts()
                     if self.state.ops.get(h)]
            gevent.joinall([self.state.pool.spawn(self._run_host, h) for h in hosts])


def _close_file_transfer(connector: Any) -> None:
    """Close the SFTP channel a session's connector opened on a pooled connection.

    pyinfra memoizes one per connector object, and every session has its own, so an unclosed
    channel per phase would pile up on the shared connection until sshd's MaxSessions (10)
    refuses new ones."""
    cache = getattr(type(connector).get_file_transfer_connection, "cache", None)
    if cache is None:
        return
    channel = cache.pop(f"{(connector,)}{{}}", None)
    if channel is not None:
        channel.close()


class _ConnectionPool:
    """Logged-in SSH clients by (address, port, user, key, known_hosts), shared by the sessions
    of one process: each phase opens a session over the same hosts, and an SSH handshake per
    host per phase (pinning the host key, then logging in) was most of a no-change run. A
    client is reused only while its transport is up; the host key was checked when it logged in.
    """

    def __init__(self) -> None:
        self._clients: dict[tuple, Any] = {}

    def get(self, key: tuple) -> Any:
        client = self._clients.get(key)
        transport = client.get_transport() if client is not None else None
        if transport is None or not transport.is_active():
            self._clients.pop(key, None)
            return None
        return client

    def put(self, key: tuple, client: Any) -> None:
        self._clients[key] = client

    def close(self) -> None:
        for client in self._clients.values():
            try:
                client.close()
            except Exception:  # noqa: BLE001 - a connection already gone is closed enough
                pass
        self._clients.clear()


_POOL = _ConnectionPool()
atexit.register(_POOL.close)


def close_connections() -> None:
    """End every SSH connection sessions of this process left open."""
    _POOL.close()


def unified_diff(host: str, path: str, before: str | None, after: str) -> list[str]:
    """The lines of a unified diff from a host's current file to the desired one."""
    old = [] if before is None else before.splitlines(keepends=True)
    lines = difflib.unified_diff(old, after.splitlines(keepends=True),
                                 fromfile=f"{host}:{path}" if before is not None else "/dev/null",
                                 tofile=f"{host}:{path} (desired)")
    return [line.rstrip("\n") for line in lines]


def pyinfra_host_data(host: SSHTarget, known_hosts: Path) -> dict[str, Any]:
    """pyinfra's data for reaching `host`: its SSH settings, the pinned keys, sudo if not root.

    Shared by the engine and the plain-pyinfra inventory of `roles/`, so both connect alike.
    """
    return {
        "ssh_hostname": host.address,
        "ssh_port": host.ssh.port,
        "ssh_user": host.ssh.user,
        "ssh_key": str(host.ssh.key),
        "ssh_known_hosts_file": str(known_hosts),
        "ssh_strict_host_key_checking": "yes",
        "ssh_allow_agent": False,
        "ssh_look_for_keys": False,
        "ssh_connect_retries": 1,
        # Everything the phases do needs root; other users go through sudo, which must not ask
        # for a password (checked when a session opens).
        "_sudo": needs_sudo(host),
    }


def needs_sudo(host: SSHTarget) -> bool:
    """Whether commands on `host` must go through sudo (its SSH user is not root)."""
    return host.ssh.user != "root"


def _change_conditions(condition: Any) -> list[Any]:
    """The OperationMetas behind `_if=meta.did_change` conditions (pyinfra's bound methods)."""
    conditions = condition if isinstance(condition, list) else [condition] if condition else []
    metas = []
    for item in conditions:
        owner = getattr(item, "__self__", None)
        if owner is not None and getattr(item, "__name__", "") == "did_change":
            metas.append(owner)
    return metas


def _connect_hint(reason: str, host: SSHTarget) -> str:
    lowered = reason.lower()
    if "authentication" in lowered:
        return f"; check spec user {host.ssh.user!r} and key {host.ssh.key}"
    if "timed out" in lowered or "timeout" in lowered:
        return "; check the address and that the host is up"
    return ""
