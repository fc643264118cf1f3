"""Docker's certs.d client certificates: `<host:port>/*.cert` with its `*.key` is presented to a
registry that requires one (Debian's docker-registry with `http.tls.clientcas`)."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from provisioner.components.runtime.images import registry
from provisioner.components.runtime.images.errors import ImageError, RegistryError
from provisioner.pki.certs import issue, new_ca

from .conftest import make_image
from .registry_fixtures import start_registry


@pytest.fixture
def client_ca(tmp_path):
    """The authority whose certificates the registry accepts from clients."""
    ca = new_ca("registry clients")
    ca.save(tmp_path / "client-ca", "ca")
    return ca, str(tmp_path / "client-ca" / "ca.crt")


@pytest.fixture
def mtls_registry(tmp_path, client_ca):
    directory = tmp_path / "registry-mtls"
    directory.mkdir()
    running = start_registry(str(directory), tls=True, client_cas=client_ca[1])
    yield running
    running.stop()


def certs_dir_for(tmp_path, running, name: str, pair=None, key: bool = True):
    """A certs.d holding the registry's CA, and `pair` as client.cert/.key when given."""
    host_dir = tmp_path / name / running.host
    host_dir.mkdir(parents=True)
    shutil.copy(running.ca_file, host_dir / "ca.crt")
    if pair is not None:
        (host_dir / "client.cert").write_bytes(pair.cert_pem())
        if key:
            (host_dir / "client.key").write_bytes(pair.key_pem())
    return str(tmp_path / name)


def test_client_certificate_from_certs_d_is_presented(store, other_store, tmp_path,
                                                      mtls_registry, client_ca):
    pair = issue(client_ca[0], "node-1", client=True)
    certs_dir = certs_dir_for(tmp_path, mtls_registry, "certs.d", pair)
    ref = f"{mtls_registry.host}/own/app:1"
    image = make_image(store, str(tmp_path), [{"hello": "world"}], [ref])

    options = {"certs_dir": certs_dir, "local_hosts_insecure": False}
    assert registry.push(store, ref, **options) == image.digest
    assert registry.pull(other_store, ref, **options).id == image.id


def test_registry_refuses_a_client_without_a_certificate_it_trusts(store, tmp_path,
                                                                    mtls_registry):
    ref = f"{mtls_registry.host}/own/app:1"
    make_image(store, str(tmp_path), [{"a": "b"}], [ref])
    stranger = issue(new_ca("someone else"), "stranger", client=True)
    for name, pair in (("no-cert", None), ("foreign-cert", stranger)):
        certs_dir = certs_dir_for(tmp_path, mtls_registry, name, pair)
        client = registry.RegistryClient(store, certs_dir=certs_dir, local_hosts_insecure=False)
        with pytest.raises(RegistryError, match=f"cannot reach registry {mtls_registry.host}"):
            asyncio.run(client.push(ref))


def test_a_client_certificate_without_its_key_is_named(store, tmp_path, mtls_registry,
                                                        client_ca):
    pair = issue(client_ca[0], "node-1", client=True)
    certs_dir = certs_dir_for(tmp_path, mtls_registry, "certs.d", pair, key=False)
    ref = f"{mtls_registry.host}/own/app:1"
    make_image(store, str(tmp_path), [{"a": "b"}], [ref])
    with pytest.raises(ImageError, match=r"missing key .*client\.key for .*client\.cert"):
        registry.push(store, ref, certs_dir=certs_dir, local_hosts_insecure=False)
