"""kubelet's metric names (so its dashboards and alerts work), in the process registry; the
server's /metrics serves them in Prometheus' text format."""

from prometheus_client import Counter, Gauge, Histogram

node_name = Gauge("kubelet_node_name", "The node's name. The count is always 1.", ["node"])
running_pods = Gauge("kubelet_running_pods", "Number of pods that have a running pod sandbox")
running_containers = Gauge("kubelet_running_containers", "Number of containers currently running",
                           ["container_state"])
pod_start_duration = Histogram(
    "kubelet_pod_start_duration_seconds",
    "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
    buckets=(0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600))
pod_worker_duration = Histogram(
    "kubelet_pod_worker_duration_seconds",
    "Duration in seconds to sync a single pod. Broken down by operation type: create, update, "
    "or sync", ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
started_containers = Counter("kubelet_started_containers_total",
                             "Cumulative number of containers started", ["container_type"])
started_containers_errors = Counter("kubelet_started_containers_errors_total",
                                    "Cumulative number of errors when starting containers",
                                    ["code", "container_type"])
started_pods = Counter("kubelet_started_pods_total", "Cumulative number of pods started")
