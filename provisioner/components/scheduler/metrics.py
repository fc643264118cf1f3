"""kube-scheduler's metric names (so its dashboards and alerts work), in the process registry."""

from prometheus_client import Counter, Gauge, Histogram

from ..api.leaderelection import MASTER_STATUS

attempts = Counter("scheduler_schedule_attempts", "Number of attempts to schedule pods, by the result.",
                   ["result", "profile"])
attempt_duration = Histogram("scheduler_scheduling_attempt_duration_seconds",
                             "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
                             ["result", "profile"],
                             buckets=(0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024))
bound = Counter("scheduler_pod_bindings", "Pods bound to nodes (not an upstream metric name).", ["profile"])
pending = Gauge("scheduler_pending_pods", "Number of pending pods, by the queue type.", ["queue"])
preemption_attempts = Counter("scheduler_preemption_attempts", "Total preemption attempts in the cluster till now")
preemption_victims = Histogram("scheduler_preemption_victims", "Number of selected preemption victims",
                               buckets=(1, 2, 4, 8, 16, 32, 64))
leader = MASTER_STATUS  # defined once for every component (provisioner.components.api)
