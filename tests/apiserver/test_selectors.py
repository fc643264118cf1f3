"""Label and field selectors: parsing, matching, and the errors bad ones get."""

import pytest

from provisioner.components.apiserver.errors import ApiError
from provisioner.components.apiserver.selectors import (
    format_label_selector,
    match_fields,
    match_labels,
    parse_fields,
    parse_labels,
    selector_from_label_selector,
)

LABELS = {"app": "web", "tier": "front", "version": "3"}


@pytest.mark.parametrize("selector,matches", [
    ("", True),
    ("app=web", True),
    ("app==web", True),
    ("app=db", False),
    ("app!=db", True),
    ("app!=web", False),
    ("missing!=x", True),
    ("app in (web,db)", True),
    ("app in (db)", False),
    ("app notin (db, cache)", True),
    ("app notin (web)", False),
    ("missing notin (web)", True),
    ("tier", True),
    ("missing", False),
    ("!missing", True),
    ("!tier", False),
    ("version>2", True),
    ("version<3", False),
    ("app=web,tier=front", True),
    ("app=web,tier=back", False),
    ("app in (web,db),!missing,version>1", True),
])
def test_label_selector_matches_like_kubernetes(selector, matches):
    assert match_labels(parse_labels(selector), LABELS) is matches


@pytest.mark.parametrize("selector", ["app=", "=web", "app in (web", "a b c", "version>x",
                                      "app=web!", "-bad=x", "app=" + "x" * 64])
def test_bad_label_selectors_are_400(selector):
    if selector == "app=":  # empty value is a valid label value
        assert parse_labels(selector) == [("app", "=", ("",))]
        return
    with pytest.raises(ApiError) as exc:
        parse_labels(selector)
    assert exc.value.code == 400


def test_label_selector_object_round_trip():
    sel = {"matchLabels": {"app": "web"},
           "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]},
                                {"key": "legacy", "operator": "DoesNotExist"}]}
    reqs = selector_from_label_selector(sel)
    assert match_labels(reqs, LABELS)
    assert not match_labels(reqs, dict(LABELS, legacy="1"))
    assert format_label_selector(sel) == "app=web,tier in (front,back),!legacy"


POD = {"kind": "Pod", "metadata": {"name": "p1", "namespace": "ns1"},
       "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}
EVENT = {"kind": "Event", "metadata": {"name": "e", "namespace": "ns1"},
         "involvedObject": {"kind": "Pod", "name": "p1", "namespace": "ns1", "uid": "u1"}}


@pytest.mark.parametrize("obj,kind,selector,matches", [
    (POD, "Pod", "metadata.name=p1", True),
    (POD, "Pod", "metadata.name!=p1", False),
    (POD, "Pod", "spec.nodeName=n1,status.phase=Running", True),
    (POD, "Pod", "spec.nodeName=", False),
    (POD, "Pod", "metadata.namespace==ns1", True),
    (EVENT, "Event", "involvedObject.name=p1,involvedObject.kind=Pod", True),
    (EVENT, "Event", "involvedObject.uid=u2", False),
])
def test_field_selectors(obj, kind, selector, matches):
    assert match_fields(parse_fields(selector, kind), obj) is matches


@pytest.mark.parametrize("kind,selector,message", [
    ("Pod", "spec.foo=bar", "field label not supported: spec.foo"),
    ("ConfigMap", "spec.nodeName=n1", "field label not supported: spec.nodeName"),
    ("Pod", "metadata.name", "invalid selector"),
])
def test_unsupported_field_selectors_are_400(kind, selector, message):
    with pytest.raises(ApiError) as exc:
        parse_fields(selector, kind)
    assert exc.value.code == 400 and message in exc.value.message
