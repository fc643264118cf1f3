"""The network agent (`provisioner-netagent`), a DaemonSet on host networking: one flat pod network
across nodes. It watches Nodes and routes every other node's podCIDR through that node's InternalIP
when they share a link (host-gw), or through a kernel VXLAN device when they do not; pod traffic
leaving the cluster CIDR is masqueraded; NetworkPolicies are enforced for the node's pods; the
node's CNI configuration is written from its podCIDR. Stopping it leaves routes in place (pods keep
talking).

Module map: ``plan`` (Nodes -> desired routes, pure), ``routes`` (pyroute2: routes, VXLAN device,
FDB), ``masquerade`` (iptables), ``policy`` (NetworkPolicies -> chains, pure), ``policyfw``
(applying them), ``cniconfig`` (the node's CNI configuration), ``main`` (flags, informers, loop).
"""
