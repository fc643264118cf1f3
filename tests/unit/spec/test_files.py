"""Whole-file problems: missing files, YAML syntax, the wrong top level, many mistakes at once."""

from __future__ import annotations

import pytest

from provisioner.spec import Problem, SpecError, load_cluster, validate_cluster

from .documents import host, inventory, minimal

CLUSTER_HEAD = """\
apiVersion: provisioner.dev/v1alpha1
kind: Cluster
metadata:
  name: lab
"""


def only_errors(path: str = "cluster.yaml") -> list[str]:
    spec, errors, _ = validate_cluster(path)
    assert spec is None
    return [str(p) for p in errors]


FILE_CASES = [
    ("missing_file_says_not_found", None, ["cluster.yaml: file not found"]),
    ("empty_file_says_what_is_expected", "",
     ["cluster.yaml: is empty; expected a mapping with apiVersion, kind, metadata and spec"]),
    ("top_level_list_is_refused", "- a\n- b\n",
     ["cluster.yaml: top level must be a mapping with apiVersion, kind, metadata and spec "
      "(found a list)"]),
    ("top_level_scalar_is_refused", "hello\n",
     ["cluster.yaml: top level must be a mapping with apiVersion, kind, metadata and spec "
      "(found a string)"]),
    ("duplicate_key_is_a_syntax_error_at_its_line", CLUSTER_HEAD + "kind: Cluster\n",
     ['cluster.yaml:5: could not parse YAML: found duplicate key "kind" '
      "(while constructing a mapping)"]),
    ("python_tags_are_not_constructed", "!!python/object/apply:os.system [true]\n",
     ["cluster.yaml:1: could not parse YAML: could not determine a constructor for the tag "
      "'tag:yaml.org,2002:python/object/apply:os...'"]),  # quoted file text is capped
    ("two_documents_are_refused", CLUSTER_HEAD + "---\nkind: Cluster\n",
     ["cluster.yaml:5: could not parse YAML: but found another document "
      "(expected a single document in the stream)"]),
    ("control_characters_are_refused", "a: \x00\n",
     ["cluster.yaml: could not parse YAML: unacceptable character #x0000: "
      "special characters are not allowed"]),
]


@pytest.mark.parametrize("name, text, expected", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_whole_file_problem(name, text, expected, write) -> None:
    if text is not None:
        write("cluster.yaml", text)
    assert only_errors() == expected


def test_yaml_syntax_error_names_file_and_line(write) -> None:
    write("cluster.yaml", CLUSTER_HEAD + "spec:\n  hosts: [a, b\n  ssh: {}\n")
    errors = only_errors()
    assert len(errors) == 1
    assert errors[0].startswith("cluster.yaml:7: could not parse YAML: ")


def test_yaml_syntax_error_in_inventory_names_the_inventory_and_line(write) -> None:
    doc = minimal()
    doc["spec"]["inventory"] = "hosts.yaml"
    write("cluster.yaml", doc)
    write("hosts.yaml", "apiVersion: provisioner.dev/v1alpha1\nkind: Inventory\nhosts:\n - a\n b\n")
    errors = only_errors()
    assert len(errors) == 1
    assert errors[0].startswith("inventory hosts.yaml:5: could not parse YAML: ")


def test_missing_inventory_is_the_only_problem(write) -> None:
    doc = minimal()
    doc["spec"] = {"inventory": "hosts.yaml"}
    write("cluster.yaml", doc)
    assert only_errors() == ["spec.inventory: file hosts.yaml does not exist"]


def test_directory_given_as_cluster_file(workdir) -> None:
    assert only_errors("home") == ["home: is a directory, not a file"]


TEN_MISTAKES = """\
apiVersion: provisioner.dev/v1
kind: Cluster
metadata:
  name: Lab
spec:
  inventory: hosts.yaml
  ssh:
    key: missing-key
  hosts:
    - name: cp1
      address: 10.0.0.11
      roles: [control-plane, etcd]
    - name: cp1
      adress: 10.0.0.12
      roles: [worker]
  networking:
    podCIDR: 10.244.0.1/16
  etcd:
    clientPort: 70000
    dataDir: var/lib/etcd
"""

TEN_EXPECTED = [
    'apiVersion: must be provisioner.dev/v1alpha1 (found "provisioner.dev/v1")',
    "metadata.name: must be a DNS-1123 label: at most 63 lowercase letters, digits or '-', "
    'starting and ending with a letter or digit (found "Lab")',
    "spec.etcd.clientPort: must be at most 65535 (found 70000)",
    'spec.etcd.dataDir: must be an absolute path (found "var/lib/etcd")',
    "spec.hosts[1].address: is required",
    "spec.hosts[1].adress: unknown field",
    'spec.hosts[1].name: duplicate host name "cp1" (also spec.hosts[0])',
    "spec.networking.podCIDR: 10.244.0.1/16 has host bits set; did you mean 10.244.0.0/16?",
    "spec.ssh.key: file {tmp}/missing-key does not exist",
    'inventory hosts.yaml: hosts[0].roles[0]: must be one of: control-plane, etcd, worker '
    '(found "master")',
]


def test_ten_mistakes_are_reported_at_once(write, workdir) -> None:
    write("cluster.yaml", TEN_MISTAKES)
    write("hosts.yaml", inventory([host("w1", "10.0.0.21", "master")]))

    with pytest.raises(SpecError) as caught:
        load_cluster("cluster.yaml")

    expected = [e.format(tmp=workdir) for e in TEN_EXPECTED]
    assert [str(p) for p in caught.value.problems] == expected
    assert caught.value.message.splitlines() == ["cluster.yaml has 10 problems:"] + [
        f"  {line}" for line in expected]


EVEN_ETCD = [
    (2, "2 etcd members cannot survive the loss of one; use an odd number"),
    (4, "4 etcd members survive no more failures than 3 would; use an odd number"),
]


@pytest.mark.parametrize("count, warning", EVEN_ETCD, ids=["two_members", "four_members"])
def test_even_etcd_count_is_a_warning_and_still_loads(count, warning, write) -> None:
    doc = minimal()
    doc["spec"]["hosts"] = [host(f"cp{i}", f"10.0.0.{i}", "control-plane", "etcd")
                            for i in range(1, count + 1)]
    write("cluster.yaml", doc)

    spec = load_cluster("cluster.yaml")

    assert spec.warnings == (Problem("spec.hosts", warning),)
    assert validate_cluster("cluster.yaml") == (spec, [], [Problem("spec.hosts", warning)])


def test_warnings_travel_with_errors(write) -> None:
    doc = minimal()
    doc["spec"]["hosts"].append(host("cp2", "10.0.0.12", "etcd", "unknown"))
    write("cluster.yaml", doc)

    with pytest.raises(SpecError) as caught:
        load_cluster("cluster.yaml")

    assert [str(w) for w in caught.value.warnings] == [
        "spec.hosts: 2 etcd members cannot survive the loss of one; use an odd number"]
    assert caught.value.message == (
        "cluster.yaml has 1 problem:\n  spec.hosts[1].roles[1]: must be one of: "
        'control-plane, etcd, worker (found "unknown")')
