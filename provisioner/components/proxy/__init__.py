"""kube-proxy (`kube-proxy`): Services on every node through iptables, as Kubernetes' kube-proxy does
in iptables mode (same chain layout and names, so operators' habits and tools apply).

Module map: ``config`` (flags and KubeProxyConfiguration), ``model`` (Services + EndpointSlices ->
service ports and endpoints, pure), ``rules`` (service ports -> iptables-restore text, pure),
``iptables`` (running iptables-restore/-save), ``proxier`` (change tracking, partial and full syncs),
``server`` (healthz on 10256, metrics on 10249), ``main`` (the process).
"""
