"""Certificates: identities, SANs, usages, chains, file modes, and a real TLS handshake."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioner.pki.certs import CertKeyPair, issue, matches, new_ca


@pytest.fixture(scope="module")
def ca() -> CertKeyPair:
    return new_ca("test-ca")


def _ext(cert: x509.Certificate, cls):
    return cert.extensions.get_extension_for_class(cls).value


def test_ca_can_sign_and_nothing_else(ca):
    constraints = _ext(ca.cert, x509.BasicConstraints)
    usage = _ext(ca.cert, x509.KeyUsage)
    assert constraints.ca is True
    assert usage.key_cert_sign and usage.crl_sign
    ca.cert.verify_directly_issued_by(ca.cert)  # self-signed


@pytest.mark.parametrize(
    "kwargs, dns, ips, ekus",
    [
        (dict(server=True, dns_names=["cp1", "localhost"], ip_addresses=["10.0.0.1", "127.0.0.1", "::1"]),
         {"cp1", "localhost"}, {"10.0.0.1", "127.0.0.1", "::1"}, [ExtendedKeyUsageOID.SERVER_AUTH]),
        (dict(client=True), set(), set(), [ExtendedKeyUsageOID.CLIENT_AUTH]),
        (dict(server=True, client=True, dns_names=["etcd1"]), {"etcd1"}, set(),
         [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
    ],
)
def test_leaf_carries_exactly_the_sans_and_usages_asked(ca, kwargs, dns, ips, ekus):
    pair = issue(ca, "leaf", **kwargs)
    pair.cert.verify_directly_issued_by(ca.cert)
    assert _ext(pair.cert, x509.BasicConstraints).ca is False
    assert list(_ext(pair.cert, x509.ExtendedKeyUsage)) == ekus
    try:
        san = _ext(pair.cert, x509.SubjectAlternativeName)
        got_dns = set(san.get_values_for_type(x509.DNSName))
        got_ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    except x509.ExtensionNotFound:
        got_dns, got_ips = set(), set()
    assert (got_dns, got_ips) == (dns, ips)


def test_groups_are_one_organization_each(ca):
    pair = issue(ca, "alice", organizations=["system:masters", "devs"], client=True)
    orgs = [a.value for a in pair.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert orgs == ["system:masters", "devs"]
    assert pair.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"


def test_save_writes_private_key_0600_and_loads_back(ca, tmp_path: Path):
    pair = issue(ca, "node", client=True)
    pair.save(tmp_path / "pki" / "etcd", "node")
    key = tmp_path / "pki" / "etcd" / "node.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "pki" / "etcd" / "node.crt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "pki" / "etcd").stat().st_mode & 0o777 == 0o700
    assert [p.name for p in (tmp_path / "pki" / "etcd").iterdir() if p.name.startswith(".")] == []
    loaded = CertKeyPair.load(tmp_path / "pki" / "etcd", "node")
    assert loaded.cert_pem() == pair.cert_pem() and loaded.key_pem() == pair.key_pem()


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({}, True),
        ({"common_name": "other"}, False),
        ({"dns_names": ["cp1", "cp9"]}, False),
        ({"ip_addresses": ["10.0.0.2"]}, False),
        ({"organizations": ["system:masters"]}, False),
        ({"min_days_left": 400}, False),  # expiring soon relative to the asked margin
    ],
)
def test_matches_decides_reuse(ca, changes, expected):
    pair = issue(ca, "cp1", dns_names=["cp1"], ip_addresses=["10.0.0.1"], server=True)
    asked = dict(common_name="cp1", dns_names=["cp1"], ip_addresses=["10.0.0.1"])
    asked.update(changes)
    assert matches(pair, ca, **asked) is expected


def test_matches_rejects_another_ca(ca):
    pair = issue(new_ca("other"), "cp1")
    assert matches(pair, ca, common_name="cp1") is False


def _serve_once(context: ssl.SSLContext, listener: socket.socket, outcome: dict) -> None:
    conn, _ = listener.accept()
    try:
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"hello " + tls.getpeercert()["subject"][0][0][1].encode())
            outcome["ok"] = True
    except (ssl.SSLError, OSError) as exc:
        outcome["error"] = exc


@pytest.mark.parametrize("with_client_cert", [True, False])
def test_tls_server_requires_a_client_certificate_from_the_ca(ca, tmp_path: Path, with_client_cert):
    server = issue(ca, "server", dns_names=["localhost"], ip_addresses=["127.0.0.1"], server=True)
    client = issue(ca, "alice", client=True)
    ca.save(tmp_path, "ca")
    server.save(tmp_path, "server")
    client.save(tmp_path, "client")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.crt"))
    server_ctx.load_cert_chain(str(tmp_path / "server.crt"), str(tmp_path / "server.key"))
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    outcome: dict = {}
    thread = threading.Thread(target=_serve_once, args=(server_ctx, listener, outcome), daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    if with_client_cert:
        client_ctx.load_cert_chain(str(tmp_path / "client.crt"), str(tmp_path / "client.key"))
    try:
        with socket.create_connection(listener.getsockname(), timeout=5) as raw:
            with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                answer = tls.recv(64)
    except (ssl.SSLError, ConnectionResetError):
        answer = b""
    thread.join(timeout=5)
    listener.close()
    if with_client_cert:
        assert answer == b"hello alice" and outcome.get("ok")
    else:
        assert answer == b"" and "error" in outcome
