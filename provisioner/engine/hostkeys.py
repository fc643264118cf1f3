"""Host key pinning: the first contact records a host's SSH key, later contacts must match.

The pinned keys live in the cluster's state directory in OpenSSH known_hosts format. pyinfra
then connects with strict checking against that file, so a changed key is always an error and
never silently accepted.
"""

from __future__ import annotations

import socket
from pathlib import Path

import paramiko

from provisioner.errors import ProvisionerError

CONNECT_TIMEOUT = 10.0


class HostKeyError(ProvisionerError):
    """A host presented a key other than the one pinned for it."""


class UnreachableError(ProvisionerError):
    """A host could not be reached over SSH."""


def known_hosts_name(address: str, port: int) -> str:
    """The known_hosts entry name OpenSSH uses for an address and port."""
    return address if port == 22 else f"[{address}]:{port}"


def fingerprint(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


def fetch_host_key(host_name: str, address: str, port: int) -> paramiko.PKey:
    """Open an SSH transport far enough to read the server's host key."""
    try:
        sock = socket.create_connection((address, port), timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise UnreachableError(
            f"host {host_name}: cannot reach {address}:{port} over SSH ({exc.strerror or exc}); "
            "check the address and port in the spec and that sshd runs on the host"
        ) from None
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=CONNECT_TIMEOUT)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise UnreachableError(
            f"host {host_name}: {address}:{port} does not speak SSH ({exc}); "
            "check the port in the spec"
        ) from None
    finally:
        transport.close()


def pin_host_key(host_name: str, address: str, port: int, known_hosts: Path) -> bool:
    """Pin the host's key on first contact; raise if it differs from the pinned one.

    Returns True when the key was newly pinned.
    """
    known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    keys = paramiko.HostKeys()
    if known_hosts.exists():
        keys.load(str(known_hosts))
    entry_name = known_hosts_name(address, port)
    presented = fetch_host_key(host_name, address, port)
    pinned = keys.lookup(entry_name) or {}
    if presented.get_name() in pinned:
        if pinned[presented.get_name()] == presented:
            return False
        raise HostKeyError(
            f"host {host_name}: SSH host key for {entry_name} changed "
            f"(now {fingerprint(presented)}); refusing to connect. If the host was rebuilt on "
            f"purpose, remove its line from {known_hosts} and re-run"
        )
    if pinned:
        # The host offers a key type we have not pinned while we hold another: treat it as a
        # change, because an attacker could offer a new type to dodge the pin.
        raise HostKeyError(
            f"host {host_name}: SSH host key for {entry_name} changed type "
            f"(pinned {', '.join(sorted(pinned))}, offered {presented.get_name()}); if the host "
            f"was rebuilt on purpose, remove its line from {known_hosts} and re-run"
        )
    keys.add(entry_name, presented.get_name(), presented)
    # Written with a private mode: the file says which hosts this operator manages.
    tmp = known_hosts.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    keys.save(str(tmp))
    tmp.replace(known_hosts)
    return True


def pin_host_keys(hosts, known_hosts: Path) -> list[str]:
    """Pin (or check) every host's key; report all unreachable hosts at once.

    Returns the names of hosts whose keys were pinned for the first time.
    """
    pinned: list[str] = []
    problems: list[str] = []
    for host in hosts:
        try:
            if pin_host_key(host.name, host.address, host.ssh.port, known_hosts):
                pinned.append(host.name)
        except HostKeyError:
            raise
        except UnreachableError as exc:
            problems.append(exc.message)
    if problems:
        raise UnreachableError("\n  ".join(["cannot reach every host:", *problems]))
    return pinned
