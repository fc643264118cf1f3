"""Patch types: JSON patch, merge patch, strategic merge patch with merge keys and directives."""

import pytest

from provisioner.components.apiserver.errors import ApiError
from provisioner.components.apiserver.patch import json_patch, merge_patch, strategic_merge

DEPLOY = {"spec": {"replicas": 1, "template": {"spec": {"containers": [
    {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]},
    {"name": "side", "image": "busybox"}]}}}}


def containers(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def test_strategic_merge_merges_containers_by_name():
    out = strategic_merge(DEPLOY, {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:2"}]}}}}, "Deployment")
    assert [(c["name"], c["image"]) for c in containers(out)] == [("web", "nginx:2"), ("side", "busybox")]
    assert containers(out)[0]["env"] == [{"name": "A", "value": "1"}]


def test_strategic_merge_delete_directive_and_element_order():
    out = strategic_merge(DEPLOY, {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "side"}, {"name": "new"}],
        "containers": [{"name": "web", "$patch": "delete"}, {"name": "new", "image": "x"}]}}}},
        "Deployment")
    assert [c["name"] for c in containers(out)] == ["side", "new"]


def test_strategic_merge_null_removes_and_plain_lists_replace():
    out = strategic_merge({"spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}}},
                           "metadata": {"finalizers": ["x", "y"]}},
                          {"spec": {"replicas": None}, "metadata": {"finalizers": ["z"]}}, "Deployment")
    assert "replicas" not in out["spec"] and out["metadata"]["finalizers"] == ["z"]


def test_strategic_merge_no_change_is_identity():
    assert strategic_merge(DEPLOY, {}, "Deployment") == DEPLOY


def test_strategic_merge_does_not_mutate_input():
    before = repr(DEPLOY)
    strategic_merge(DEPLOY, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "z"}]}}}},
                    "Deployment")
    assert repr(DEPLOY) == before


def test_merge_patch_replaces_lists_and_deletes_nulls():
    out = merge_patch(DEPLOY, {"spec": {"replicas": None, "template": {"spec": {"containers": [
        {"name": "only", "image": "x"}]}}}})
    assert "replicas" not in out["spec"] and [c["name"] for c in containers(out)] == ["only"]


@pytest.mark.parametrize("ops,check", [
    ([{"op": "replace", "path": "/spec/replicas", "value": 3}], lambda o: o["spec"]["replicas"] == 3),
    ([{"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "c"}}],
     lambda o: containers(o)[-1]["name"] == "c"),
    ([{"op": "remove", "path": "/spec/template/spec/containers/0"}],
     lambda o: containers(o)[0]["name"] == "side"),
    ([{"op": "test", "path": "/spec/replicas", "value": 1},
      {"op": "copy", "from": "/spec/replicas", "path": "/spec/paused"}], lambda o: o["spec"]["paused"] == 1),
    ([{"op": "move", "from": "/spec/replicas", "path": "/spec/x"}],
     lambda o: "replicas" not in o["spec"] and o["spec"]["x"] == 1),
    ([{"op": "add", "path": "/metadata~1x", "value": 1}], lambda o: o["metadata/x"] == 1),
])
def test_json_patch_operations(ops, check):
    assert check(json_patch(DEPLOY, ops))


@pytest.mark.parametrize("ops", [
    [{"op": "replace", "path": "/spec/nothere", "value": 1}],
    [{"op": "remove", "path": "/spec/nothere"}],
    [{"op": "test", "path": "/spec/replicas", "value": 9}],
    [{"op": "frobnicate", "path": "/spec"}],
    [{"op": "add", "path": "no-slash", "value": 1}],
    {"op": "add"},
])
def test_json_patch_failures_are_4xx(ops):
    with pytest.raises(ApiError) as exc:
        json_patch(DEPLOY, ops)
    assert 400 <= exc.value.code < 500
