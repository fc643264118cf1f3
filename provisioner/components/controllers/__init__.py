"""kube-controller-manager: this project's controllers, run as one process talking only to the API.

Entry point `kube-controller-manager` -> main.py (flags.py parses and checks kube-controller-manager's
flags; manager.py holds the table of controllers, CONTROLLERS, and runs the chosen ones on shared
informers for each term of leadership). Shared pieces: base.py (work queue, Controller, Context),
podutil.py (selectors, pod state, owner references), discovery.py (served resources), metrics.py
(workqueue and leader metrics), credentials.py (--use-service-account-credentials), history.py
(ControllerRevisions).

One module per controller, each a pure decision part (tested in tests/controllers/unit) and a
Controller subclass that reads caches and writes through the API:
replicaset.py (ReplicaSet, ReplicationController), deployment.py + rollout.py, statefulset.py,
daemonset.py, job.py, cronjob.py, ttlafterfinished.py, serviceaccount.py, serviceaccounttoken.py,
rootca.py, namespace.py, garbagecollector.py, podgc.py, endpoints.py, endpointslice.py,
endpointslicemirroring.py, nodeipam.py, nodelifecycle.py, tainteviction.py, csrapproving.py,
csrsigning.py, bootstrap.py (bootstrapsigner, tokencleaner), resourcequota.py, disruption.py,
clusterroleaggregation.py, protection.py (pvc/pv protection), ephemeralvolume.py,
pvbinder.py, ttl.py, hpa.py (horizontal pod autoscaler; its arithmetic in hpacalc.py);
controllerroles.py (RBAC for --use-service-account-credentials).
"""
