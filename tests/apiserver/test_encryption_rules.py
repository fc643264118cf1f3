"""Which stored resources an EncryptionConfiguration encrypts: built-in kinds by `plural[.group]`,
custom resources by `plural.group` (kept under <group>/<plural>), everything by `*.*`."""

from __future__ import annotations

import base64

from provisioner.components.apiserver import encryption

KEY = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def _transformer(tmp_path, resources: list[str]):
    config = tmp_path / "enc.yaml"
    config.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
                      f"resources:\n- resources: {resources}\n  providers:\n"
                      f"  - aescbc:\n      keys:\n      - name: k1\n        secret: {KEY}\n"
                      "  - identity: {}\n")
    return encryption.load(str(config))


def test_custom_and_built_in_resources_are_encrypted_by_their_names(tmp_path):
    t = _transformer(tmp_path, ["secrets", "deployments.apps", "widgets.example.com"])
    for store in ("secrets", "deployments", "example.com/widgets"):
        sealed = t.to_storage(store, b'{"a":1}', b"/registry/x")
        assert sealed.startswith(b"k8s:enc:aescbc:v1:k1:"), store
        assert t.from_storage(store, sealed, b"/registry/x") == b'{"a":1}'
    for store in ("configmaps", "other.example.com/widgets"):
        assert t.to_storage(store, b'{"a":1}', b"/registry/x") == b'{"a":1}', store


def test_star_star_encrypts_everything(tmp_path):
    t = _transformer(tmp_path, ["*.*"])
    assert t.to_storage("example.com/widgets", b"{}", b"/k").startswith(b"k8s:enc:aescbc:")
    assert t.to_storage("configmaps", b"{}", b"/k").startswith(b"k8s:enc:aescbc:")
