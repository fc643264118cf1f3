"""The lab's Debian mirror comes from the operator's apt sources, a flag or the environment."""

from __future__ import annotations

import pytest

from provisioner.errors import ProvisionerError
from provisioner.lab import sources

DEB822 = """\
Types: deb
# a comment inside the stanza
URIs: http://mirror.one.test/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.test/debian-security
Suites: bookworm-security
Components: main
"""

ONE_LINE = """\
# deb http://commented.test/debian bookworm main
deb-src http://src.test/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://mirror.two.test/debian/ bookworm main contrib
deb http://other.test/debian trixie main
"""


def test_deb822_stanzas_are_read_with_comments_skipped():
    found = sources.parse_deb822(DEB822)
    assert found[0] == sources.AptSource("http://mirror.one.test/debian",
                                         ("bookworm", "bookworm-updates"), ("main",))
    assert sources.pick_mirror(found, "bookworm") == "http://mirror.one.test/debian"


def test_one_line_entries_skip_options_deb_src_and_other_suites():
    found = sources.parse_one_line(ONE_LINE)
    assert [s.uri for s in found] == ["http://mirror.two.test/debian/", "http://other.test/debian"]
    assert sources.pick_mirror(found, "bookworm") == "http://mirror.two.test/debian"
    assert sources.pick_mirror(found, "trixie") == "http://other.test/debian"


def test_a_disabled_stanza_or_a_security_suite_is_not_the_mirror():
    text = DEB822.replace("Types: deb\n#", "Types: deb\nEnabled: no\n#", 1)
    assert sources.pick_mirror(sources.parse_deb822(text), "bookworm") is None


def test_precedence_is_flag_then_environment_then_apt_sources(tmp_path, monkeypatch):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    monkeypatch.delenv(sources.ENV_VAR, raising=False)
    assert sources.debian_mirror("bookworm", apt_dir=tmp_path) == "http://mirror.one.test/debian"
    monkeypatch.setenv(sources.ENV_VAR, "http://env.test/debian/")
    assert sources.debian_mirror("bookworm", apt_dir=tmp_path) == "http://env.test/debian"
    assert sources.debian_mirror("bookworm", "http://flag.test/d", tmp_path) == "http://flag.test/d"


def test_no_mirror_anywhere_says_how_to_give_one(tmp_path, monkeypatch):
    monkeypatch.delenv(sources.ENV_VAR, raising=False)
    (tmp_path / "sources.list").write_text(ONE_LINE.replace("bookworm", "sid"))
    with pytest.raises(ProvisionerError, match="--mirror URL.*PROVISIONER_LAB_MIRROR"):
        sources.debian_mirror("bookworm", apt_dir=tmp_path)
