"""Image references spelled as Docker spells them."""

import pytest

from provisioner.components.runtime.images.errors import InvalidReference
from provisioner.components.runtime.images.reference import normalize_tag, parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, registry, repository, tag, digest, familiar", [
    ("busybox", "docker.io", "library/busybox", "latest", None, "busybox:latest"),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None, "busybox:1.36"),
    ("docker.io/library/busybox", "docker.io", "library/busybox", "latest", None,
     "busybox:latest"),
    ("someone/app:v2", "docker.io", "someone/app", "v2", None, "someone/app:v2"),
    ("localhost:5000/web:1", "localhost:5000", "web", "1", None, "localhost:5000/web:1"),
    ("localhost/web", "localhost", "web", "latest", None, "localhost/web:latest"),
    ("reg.example.com/a/b/c", "reg.example.com", "a/b/c", "latest", None,
     "reg.example.com/a/b/c:latest"),
    (f"web@{DIGEST}", "docker.io", "library/web", None, DIGEST, f"web@{DIGEST}"),
    (f"127.0.0.1:5000/web:1@{DIGEST}", "127.0.0.1:5000", "web", "1", DIGEST,
     f"127.0.0.1:5000/web:1@{DIGEST}"),
])
def test_parse(text, registry, repository, tag, digest, familiar):
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag,
                                                                   digest)
    assert str(ref) == familiar


@pytest.mark.parametrize("text", ["", "Busybox", "web:", "web@sha256:123", "a//b", " web",
                                  "web:bad/tag", "-web"])
def test_invalid(text):
    with pytest.raises(InvalidReference, match="invalid image reference"):
        parse_reference(text)


def test_tags_are_normalized_and_digests_refused():
    assert normalize_tag("busybox") == "busybox:latest"
    with pytest.raises(InvalidReference, match="cannot tag with a digest"):
        normalize_tag(f"web@{DIGEST}")
