"""A pyinfra inventory made from a cluster spec, for running `roles/*.py` with plain pyinfra.

    PROVISIONER_SPEC=inventories/lab/cluster.yaml pyinfra inventories/pyinfra_inventory.py roles/etcd.py

Groups: all_hosts, etcd, control_plane, worker. Host keys are the cluster's pinned ones.
"""

from provisioner.roles import inventory_groups, load_spec

_groups = inventory_groups(load_spec())
all_hosts = _groups["all_hosts"]
etcd = _groups["etcd"]
control_plane = _groups["control_plane"]
worker = _groups["worker"]
