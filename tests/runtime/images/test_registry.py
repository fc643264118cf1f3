"""pull/push against Debian's docker-registry: plain HTTP, TLS with a private CA, token auth."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from provisioner.components.runtime.images import oci, registry
from provisioner.components.runtime.images.errors import ImageNotFound, RegistryError
from provisioner.components.runtime.images.store import ImageStore

from .conftest import make_image
from .registry_fixtures import TOKEN_PASSWORD, TOKEN_USER, registry_catalog


def assert_same_image(pushed, pulled, store) -> None:
    assert (pulled.digest, pulled.id) == (pushed.digest, pushed.id)
    assert [layer.digest for layer in pulled.layers] == [layer.digest for layer in pushed.layers]
    store.verify(pulled)
    store.layer_dirs(pulled)


def test_push_pull_round_trip_over_plain_http(store, other_store, tmp_path, plain_registry):
    ref = f"{plain_registry.host}/team/web:1"
    image = make_image(store, str(tmp_path), [{"a": "1" * 5000}, {"b": "2"}], [ref])
    lines: list[str] = []
    digest = registry.push(store, ref, progress=lines.append)
    assert digest == image.digest
    assert registry_catalog(plain_registry) == {"repositories": ["team/web"]}

    pulled = registry.pull(other_store, ref)
    assert_same_image(image, pulled, other_store)
    assert pulled.tags == [ref]
    assert other_store.resolve(f"{plain_registry.host}/team/web@{image.digest}").id == image.id

    again: list[str] = []
    registry.push(store, ref, progress=again.append)
    assert sum("already exists" in line for line in again) == 3   # two layers and the config


def test_chunked_upload_and_pull_by_digest(store, other_store, tmp_path, plain_registry):
    ref = f"{plain_registry.host}/big:1"
    image = make_image(store, str(tmp_path), [{"blob": os.urandom(300_000).hex()}], [ref])
    registry.push(store, ref, chunk_size=64 * 1024)
    pulled = registry.pull(other_store, f"{plain_registry.host}/big@{image.digest}")
    assert_same_image(image, pulled, other_store)
    assert pulled.tags == []          # pulled by digest: no tag


def test_docker_v2_manifests_keep_their_media_type_and_digest(store, other_store, tmp_path,
                                                               plain_registry):
    ref = f"{plain_registry.host}/dockerish:1"
    base = make_image(store, str(tmp_path), [{"x": "y"}], ["base:1"])
    manifest = {
        "schemaVersion": 2, "mediaType": oci.DOCKER_MANIFEST,
        "config": {"mediaType": oci.DOCKER_CONFIG, "digest": base.id,
                   "size": store.blobs.size(base.id)},
        "layers": [{"mediaType": oci.DOCKER_LAYER, "digest": layer.digest, "size": layer.size}
                   for layer in base.layers],
    }
    image = store.add_manifest(json.dumps(manifest, indent=3).encode(), None, [ref])
    assert image.manifest_media_type == oci.DOCKER_MANIFEST
    registry.push(store, ref)
    pulled = registry.pull(other_store, ref)
    assert_same_image(image, pulled, other_store)
    assert pulled.manifest_media_type == oci.DOCKER_MANIFEST


def test_push_pull_over_tls_with_a_private_ca(store, other_store, tmp_path, tls_registry):
    ref = f"{tls_registry.host}/secure/app:2"
    image = make_image(store, str(tmp_path), [{"secret": "s"}], [ref])
    # Loopback counts as insecure by default; insist on verified TLS here.
    registry.push(store, ref, ca_file=tls_registry.ca_file, local_hosts_insecure=False)
    certs_dir = tmp_path / "certs.d"
    (certs_dir / tls_registry.host).mkdir(parents=True)
    (certs_dir / tls_registry.host / "ca.crt").write_bytes(open(tls_registry.ca_file, "rb").read())
    pulled = registry.pull(other_store, ref, certs_dir=str(certs_dir), local_hosts_insecure=False)
    assert_same_image(image, pulled, other_store)


def test_tls_registry_with_unknown_ca_is_refused_unless_insecure(store, tmp_path, tls_registry):
    # Treated as a remote registry: TLS must verify unless the request is marked insecure.
    ref = f"{tls_registry.host}/secure/app:2"
    make_image(store, str(tmp_path), [{"a": "b"}], [ref])
    client = registry.RegistryClient(store, local_hosts_insecure=False)
    with pytest.raises(RegistryError, match=f"cannot reach registry {tls_registry.host}.*"
                                            "CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(client.push(ref))
    assert asyncio.run(client.push(ref, insecure=True)).startswith("sha256:")


def test_token_auth_round_trip(store, other_store, tmp_path, token_registry):
    ref = f"{token_registry.host}/private/db:3"
    image = make_image(store, str(tmp_path), [{"db": "data"}], [ref])
    credentials = {token_registry.host: (TOKEN_USER, TOKEN_PASSWORD)}
    registry.push(store, ref, credentials=credentials)
    scopes = {request.get("scope") for request in token_registry.tokens.requests}
    assert "repository:private/db:pull,push" in scopes
    assert all(request["service"] == "test-registry" for request in token_registry.tokens.requests)
    pulled = registry.pull(other_store, ref, credentials=credentials)
    assert_same_image(image, pulled, other_store)


def test_token_auth_with_wrong_or_missing_credentials(store, other_store, tmp_path,
                                                      token_registry):
    ref = f"{token_registry.host}/private/db:3"
    make_image(store, str(tmp_path), [{"db": "data"}], [ref])
    with pytest.raises(RegistryError, match="refused the given credentials"):
        registry.push(store, ref, credentials={token_registry.host: (TOKEN_USER, "wrong")})
    with pytest.raises(RegistryError, match="refused anonymous access"):
        registry.pull(other_store, ref)
    assert other_store.list() == [] and os.listdir(other_store.blobs.dir) == []


def test_basic_auth_round_trip(store, other_store, tmp_path, basic_registry):
    ref = f"{basic_registry.host}/basic/app:1"
    image = make_image(store, str(tmp_path), [{"basic": "auth"}], [ref])
    with pytest.raises(RegistryError, match="requires a user name and password"):
        registry.push(store, ref)
    credentials = {basic_registry.host: (TOKEN_USER, TOKEN_PASSWORD)}
    registry.push(store, ref, credentials=credentials)
    pulled = registry.pull(other_store, ref, credentials=credentials)
    assert_same_image(image, pulled, other_store)
    with pytest.raises(RegistryError, match="answered 401 .*check the credentials"):
        registry.pull(ImageStore(str(tmp_path / "third")), ref,
                      credentials={basic_registry.host: (TOKEN_USER, "wrong")})


def test_pull_of_unknown_image_and_push_of_unknown_local_image(store, other_store, plain_registry):
    with pytest.raises(RegistryError, match=f"image {plain_registry.host}/nothing:here "
                                            "not found in registry"):
        registry.pull(other_store, f"{plain_registry.host}/nothing:here")
    with pytest.raises(ImageNotFound, match="is not in the local store"):
        registry.push(store, f"{plain_registry.host}/ghost:1")
    assert other_store.list() == []


def test_unreachable_registry_names_it(other_store):
    from .registry_fixtures import free_port
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError, match=f"cannot reach registry {host}"):
        registry.pull(other_store, f"{host}/web:1")
