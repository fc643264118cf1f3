"""metrics-server: the resource metrics API (metrics.k8s.io/v1beta1) behind `kubectl top` and HPAs.

As the Kubernetes SIG's metrics-server: every --metric-resolution it scrapes each node's kubelet
`/metrics/resource` over HTTPS with its own credentials, keeps the last two samples per node and
per container, and serves NodeMetrics and PodMetrics (CPU as a rate between the two samples,
memory as the latest working set) as an aggregated API server behind the APIService
v1beta1.metrics.k8s.io.

Module map:
  main.py     flags (metrics-server's names), wiring, signals
  scraper.py  which nodes, one scrape of a kubelet, the Prometheus text parsed into a sample
  store.py    the last two samples; NodeMetrics and PodMetrics built from them
  auth.py     requestheader and client-certificate authentication, TokenReview, SubjectAccessReview
  api.py      the HTTPS server: discovery, nodes, pods, /healthz /livez /readyz
"""
