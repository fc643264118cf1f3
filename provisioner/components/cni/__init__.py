"""This project's CNI plugins (`provisioner-cni`), run by container runtimes as the CNI 1.0
specification says: one program installed in /opt/cni/bin under several names (links), dispatching
on the ``type`` of its configuration: ``provisioner-bridge`` (a Linux bridge and a veth per pod),
``provisioner-host-local`` (addresses from the node's pod CIDR, one file per address),
``provisioner-portmap`` (hostPort through DNAT) and ``provisioner-loopback``.

Module map: ``main`` (entry, dispatch, error replies), ``protocol`` (environment, results,
delegation to IPAM plugins), one module per plugin, ``iptables`` (rule helpers).
"""
