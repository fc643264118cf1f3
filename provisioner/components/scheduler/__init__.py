"""kube-scheduler: this project's scheduler, one process talking only to the API server.

Entry point `kube-scheduler` -> main.py (flags, leader election, the secure port with delegated
authentication and authorization). config.py reads KubeSchedulerConfiguration; scheduler.py is the
loop (filter, score, assume, bind in the background); cache.py and podinfo.py hold what nodes carry;
filters.py and scores.py the plugins; framework.py their shared types and kube-scheduler's failure
message; queue.py the scheduling queue with backoff; preemption.py victims and nominations;
equivalence.py reuses filter results across identical pods; eventpacing.py lets Scheduled events
wait behind bindings; metrics.py the Prometheus metrics.
"""
