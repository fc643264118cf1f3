"""Prometheus metrics with kube-controller-manager's names (client-go's workqueue metrics and
leader election status), served on /metrics by the component server, so its dashboards work."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from ..api.leaderelection import MASTER_STATUS

_BUCKETS = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100)  # client-go's: 10 ns to 100 s

ADDS = Counter("workqueue_adds", "Total number of adds handled by workqueue", ["name"])
DEPTH = Gauge("workqueue_depth", "Current depth of workqueue", ["name"])
RETRIES = Counter("workqueue_retries", "Total number of retries handled by workqueue", ["name"])
QUEUE_SECONDS = Histogram("workqueue_queue_duration_seconds",
                          "How long in seconds an item stays in workqueue before being requested.", ["name"],
                          buckets=_BUCKETS)
WORK_SECONDS = Histogram("workqueue_work_duration_seconds",
                         "How long in seconds processing an item from workqueue takes.", ["name"], buckets=_BUCKETS)
LEADER = MASTER_STATUS  # defined once for every component (provisioner.components.api)
