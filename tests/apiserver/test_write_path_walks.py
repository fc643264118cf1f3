"""The per-write schema walks (required fields, managedFields field sets) give what they gave
before they were made faster: pinned results for objects a user sends, and the pruned
required-field walk against a walk of every typed field, for every served type."""

from __future__ import annotations

from provisioner.components.apiserver import fields, schemas, validation

LABEL_KEY_MSG = ("Invalid value: \"bad key!\": name part must consist of alphanumeric characters, '-', '_' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                 "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


def test_missing_fields_are_named_in_order():
    pod = {"metadata": {"name": "p", "labels": {"bad key!": "v"}}, "spec": {
        "containers": [{"image": "x", "ports": [{}], "env": [{"value": "v"}], "volumeMounts": [{"name": "a"}]}],
        "volumes": [{}], "tolerations": [{}]}}
    assert validation.validate("Pod", pod) == [
        ("metadata.labels", LABEL_KEY_MSG), ("spec.containers[0].name", "Required value"),
        ("spec.containers[0].ports[0].containerPort", "Required value"),
        ("spec.containers[0].env[0].name", "Required value"),
        ("spec.containers[0].volumeMounts[0].mountPath", "Required value"),
        ("spec.volumes[0].name", "Required value")]
    deployment = {"metadata": {"name": "d"}, "spec": {"template": {
        "metadata": {"ownerReferences": [{}]}, "spec": {"containers": [{}], "initContainers": [{"name": "i"}]}}}}
    assert validation.validate("Deployment", deployment) == [
        ("spec.selector", "Required value"), ("spec.template.spec.containers[0].name", "Required value"),
        ("spec.template.spec.containers[0].image", "Required value")]
    role = {"metadata": {"name": "r"}, "rules": [{}, {"verbs": ["get"]}],
            "aggregationRule": {"clusterRoleSelectors": [{"matchExpressions": [{}]}]}}
    assert validation.validate("ClusterRole", role) == [
        ("rules[0].verbs", "Required value"),
        ("aggregationRule.clusterRoleSelectors[0].matchExpressions[0].key", "Required value"),
        ("aggregationRule.clusterRoleSelectors[0].matchExpressions[0].operator", "Required value")]


def _every_typed_field(type_name: str, depth: int = 0) -> dict:
    """An object of `type_name` holding every typed field (objects, one-element lists of
    objects) a few levels down, and nothing else: each REQUIRED field is missing."""
    out: dict = {}
    if depth > 4:
        return out
    for k, notation in schemas.T[type_name][1].items():
        shape, elem, _ = schemas.parse(notation)
        if shape == "ref":
            out[k] = _every_typed_field(elem, depth + 1)
        elif shape == "list" and elem in schemas.T:
            out[k] = [_every_typed_field(elem, depth + 1)]
    return out


def _walk_everything(obj: dict, type_name: str, path: str) -> list:
    """Required fields found by walking every typed field (the walk before it was pruned)."""
    if type_name not in schemas.T or not isinstance(obj, dict):
        return []
    causes = [(f"{path}{r}", "Required value") for r in validation.REQUIRED.get(type_name, ())
              if obj.get(r) in (None, "", [], {})]
    for k, v in obj.items():
        shape, elem, _ = schemas.parse(schemas.T[type_name][1].get(k, "any"))
        if shape == "ref" and elem != "ObjectMeta":
            causes += _walk_everything(v, elem, f"{path}{k}.")
        elif shape == "list" and elem in schemas.T and isinstance(v, list):
            for i, x in enumerate(v):
                causes += _walk_everything(x, elem, f"{path}{k}[{i}].")
    return causes


def test_the_pruned_walk_finds_what_walking_everything_finds():
    found = 0
    for type_name in schemas.T:
        obj = _every_typed_field(type_name)
        want = _walk_everything(obj, type_name, "")
        assert validation._required(obj, type_name, "") == want, type_name
        found += len(want)
    assert found > 100  # the objects do miss required fields: the comparison means something


def test_managed_field_set_of_a_pod():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"},
                                                          "annotations": {"a": "b"}, "uid": "x"},
           "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                    "env": [{"name": "É", "value": "v"}], "resources": {"limits": {"cpu": "1"}},
                                    "volumeMounts": [{"name": "data", "mountPath": "/d"}]}],
                    "volumes": [{"name": "data", "emptyDir": {}}], "nodeSelector": {"disk": "ssd"},
                    "tolerations": [{"key": "k", "operator": "Exists"}]}}
    item = {".": {}, "f:name": {}}
    assert fields.field_set(pod, "Pod") == {
        "f:metadata": {"f:labels": {"f:app": {}}, "f:annotations": {"f:a": {}}},
        "f:spec": {
            "f:containers": {'k:{"name":"c"}': {
                **item, "f:image": {},
                "f:ports": {'k:{"containerPort":80}': {".": {}, "f:containerPort": {}, "f:protocol": {}}},
                "f:env": {'k:{"name":"\\u00c9"}': {**item, "f:value": {}}},
                "f:resources": {"f:limits": {"f:cpu": {}}},
                "f:volumeMounts": {'k:{"mountPath":"/d"}': {**item, "f:mountPath": {}}}}},
            "f:volumes": {'k:{"name":"data"}': {**item, "f:emptyDir": {}}},
            "f:nodeSelector": {"f:disk": {}},
            "f:tolerations": {}}}
