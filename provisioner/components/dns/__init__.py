"""Cluster DNS (`provisioner-dns`): the Kubernetes DNS specification served from the API's Services
and EndpointSlices, other names forwarded to the node's resolvers with a cache. Deployed as kubeadm
deploys its DNS add-on (Deployment coredns, Service kube-dns); health on :8080/health, readiness on
:8181/ready, metrics on :9153 with CoreDNS's metric names.

Module map: ``zone`` (Services + EndpointSlices -> records, pure), ``answer`` (one query -> one
response for the cluster zone, pure), ``forward`` (upstream resolvers and the cache), ``server``
(UDP/TCP listeners, health, readiness, metrics), ``main`` (flags, informers, the process).
"""
