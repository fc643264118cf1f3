"""Pure controller decisions, table-driven: desired vs observed in, actions out."""

from __future__ import annotations

import datetime as dt

import pytest

from provisioner.components.controllers import (
    daemonset,
    flags,
    manager,
    namespace,
    nodeipam,
    nodelifecycle,
    podgc,
    podutil,
    replicaset,
    rollout,
    tainteviction,
)

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
KNOWN = manager.known()
ALIASES = manager.aliases()


def pod(name: str, *, node: str = "", phase: str = "Running", ready: bool = True, created: str = "2026-01-01T00:00:00Z",
        ready_since: str = "2026-01-01T00:00:00Z", labels: dict | None = None, deleting: bool = False) -> dict:
    p = {"metadata": {"name": name, "creationTimestamp": created, "labels": labels or {}},
         "spec": {"nodeName": node} if node else {},
         "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                                    "lastTransitionTime": ready_since}]}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return p


# -- flags ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, on, off", [
    ("*", {"deployment", "replicaset", "garbagecollector"}, {"bootstrapsigner", "tokencleaner"}),
    ("*,bootstrapsigner,tokencleaner", {"deployment", "bootstrapsigner", "tokencleaner"}, set()),
    ("*,-deployment", {"replicaset"}, {"deployment"}),
    ("deployment", {"deployment"}, {"replicaset"}),
    ("", set(), {"deployment"}),
])
def test_select_controllers(spec, on, off):
    chosen = flags.select_controllers(spec, KNOWN, ALIASES)
    assert {ALIASES[n] for n in on} <= chosen and not {ALIASES[n] for n in off} & chosen


def test_canonical_names_and_aliases_are_one_controller():
    assert flags.select_controllers("*,-deployment-controller", KNOWN, ALIASES) == \
        flags.select_controllers("*,-deployment", KNOWN, ALIASES)


def test_unknown_controllers_are_named():
    with pytest.raises(ValueError, match="bogus, nope"):
        flags.select_controllers("*,-nope,bogus", KNOWN, ALIASES)


@pytest.mark.parametrize("text, seconds", [("50s", 50), ("1m30s", 90), ("300ms", 0.3), ("1h", 3600), ("0", 0)])
def test_durations(text, seconds):
    assert flags.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["50", "soon", "1x", ""])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        flags.parse_duration(text)


# -- selectors and pods -------------------------------------------------------------------------------
@pytest.mark.parametrize("selector, labels, matches", [
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {}, True),
    ({}, {"x": "y"}, True),
    (None, {"x": "y"}, False),
])
def test_label_selectors(selector, labels, matches):
    assert podutil.selector_matches(selector, labels) is matches


def test_scale_down_deletes_the_least_useful_pods_first():
    pods = [pod("running-old", node="n", created="2026-01-01T00:00:00Z"),
            pod("unscheduled", phase="Pending", ready=False),
            pod("not-ready", node="n", ready=False),
            pod("running-new", node="n", created="2026-01-01T01:00:00Z", ready_since="2026-01-01T01:00:00Z")]
    create, delete = replicaset.plan_scale(1, pods)
    assert create == 0
    assert [p["metadata"]["name"] for p in delete] == ["unscheduled", "not-ready", "running-new"]


@pytest.mark.parametrize("desired, have, create, delete", [(3, 3, 0, 0), (5, 3, 2, 0), (1, 3, 0, 2),
                                                          (1000, 0, 500, 0)])
def test_plan_scale_counts(desired, have, create, delete):
    c, d = replicaset.plan_scale(desired, [pod(f"p{i}") for i in range(have)])
    assert (c, len(d)) == (create, delete)


def test_slow_start_batches():
    assert replicaset.slow_start_batches(10) == [1, 2, 4, 3]
    assert replicaset.slow_start_batches(0) == []


def test_availability_waits_for_min_ready_seconds():
    p = pod("p", ready_since="2026-01-01T11:59:55Z")
    assert podutil.is_available(p, 0, NOW) and not podutil.is_available(p, 10, NOW)
    assert podutil.is_available(p, 5, NOW)


# -- rollout arithmetic ---------------------------------------------------------------------------------
def deployment(replicas=10, surge="25%", unavailable="25%", strategy="RollingUpdate", generation=1) -> dict:
    return {"metadata": {"name": "d", "generation": generation, "uid": "u"},
            "spec": {"replicas": replicas, "strategy": {"type": strategy, "rollingUpdate": {
                "maxSurge": surge, "maxUnavailable": unavailable}}, "progressDeadlineSeconds": 600,
                "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}}},
            "status": {}}


def rs(name: str, replicas: int, available: int | None = None, created: str = "2026-01-01T00:00:00Z") -> dict:
    return {"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "availableReplicas": replicas if available is None else available}}


@pytest.mark.parametrize("replicas, surge, unavailable, want", [
    (10, "25%", "25%", (3, 2)), (4, 1, 0, (1, 0)), (3, 0, 0, (0, 1)), (1, "25%", "25%", (1, 0)),
    (10, "0%", "100%", (0, 10))])
def test_fenceposts(replicas, surge, unavailable, want):
    assert rollout.fenceposts(deployment(replicas, surge, unavailable)) == want


def test_rolling_new_replicas_stays_within_surge():
    d = deployment(replicas=4, surge=1, unavailable=0)
    new = rs("new", 0)
    assert rollout.rolling_new_replicas(d, [rs("old", 4), new], new) == 1  # 4 + 1 surge
    new = rs("new", 1, available=0)
    assert rollout.rolling_new_replicas(d, [rs("old", 4), new], new) == 1  # at the ceiling: wait


def test_old_replicas_scale_down_keeps_availability():
    d = deployment(replicas=4, surge=1, unavailable=0)
    new = rs("new", 1, available=0)
    assert rollout.rolling_old_scale_down(d, [rs("old", 4), new], [rs("old", 4)], new) == {}
    new = rs("new", 1, available=1)
    assert rollout.rolling_old_scale_down(d, [rs("old", 4), new], [rs("old", 4)], new) == {"old": 3}


def test_unhealthy_old_replicas_go_first():
    d = deployment(replicas=4, surge=0, unavailable=1)
    old = rs("old", 4, available=2)
    new = rs("new", 0)
    assert rollout.rolling_old_scale_down(d, [old, new], [old], new) == {"old": 3}


def test_template_hash_is_stable_and_ignores_its_label():
    t = deployment()["spec"]["template"]
    h = rollout.template_hash(t)
    labelled = {"metadata": {"labels": {"app": "x", "pod-template-hash": h}}, "spec": t["spec"]}
    assert rollout.template_hash(labelled) == h and rollout.equal_ignore_hash(t, labelled)
    assert rollout.template_hash(t, 1) != h
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_revision_history_when_an_old_replicaset_comes_back():
    d = deployment()
    old = {"metadata": {"annotations": {rollout.REVISION: "1"}}}
    ann = rollout.replicaset_annotations(d, old, 3, 1)
    assert ann[rollout.REVISION] == "3" and ann[rollout.REVISION_HISTORY] == "1"
    assert ann[rollout.DESIRED_REPLICAS] == "10" and ann[rollout.MAX_REPLICAS] == "11"


def test_proportional_scaling_spreads_a_resize():
    d = deployment(replicas=20, surge=0, unavailable=1)
    plan = rollout.proportional_scale(d, [rs("a", 5), rs("b", 5)], rs("b", 5))
    assert sum(plan.values()) == 20 and plan == {"a": 10, "b": 10}


@pytest.mark.parametrize("status, reason", [
    ({"replicas": 10, "updatedReplicas": 10, "availableReplicas": 10, "observedGeneration": 1},
     rollout.NEW_RS_AVAILABLE),
    ({"replicas": 10, "updatedReplicas": 5, "availableReplicas": 8, "observedGeneration": 1}, rollout.RS_UPDATED),
])
def test_progressing_condition(status, reason):
    d = deployment()
    status = dict(status, conditions=[])
    rollout.rollout_conditions(d, status, {"metadata": {"name": "d-1"}}, NOW)
    assert rollout.get_condition(status, "Progressing")["reason"] == reason


def test_progress_deadline_exceeded_after_quiet_period():
    d = deployment()
    d["spec"]["progressDeadlineSeconds"] = 10
    d["status"] = {"replicas": 10, "updatedReplicas": 5, "availableReplicas": 5}
    status = {"replicas": 10, "updatedReplicas": 5, "availableReplicas": 5, "observedGeneration": 1,
              "conditions": [{"type": "Progressing", "status": "True", "reason": rollout.RS_UPDATED,
                              "lastUpdateTime": "2026-01-01T11:59:00Z", "lastTransitionTime": "2026-01-01T11:59:00Z"}]}
    rollout.rollout_conditions(d, status, {"metadata": {"name": "d-1"}}, NOW)
    cond = rollout.get_condition(status, "Progressing")
    assert (cond["status"], cond["reason"]) == ("False", rollout.TIMED_OUT)


# -- daemonset, nodes, eviction -------------------------------------------------------------------------
def node(name: str, labels: dict | None = None, taints: list | None = None, ready: str | None = None) -> dict:
    n = {"metadata": {"name": name, "labels": labels or {}, "creationTimestamp": "2026-01-01T00:00:00Z"},
         "spec": {"taints": taints or []}, "status": {"conditions": []}}
    if ready:
        n["status"]["conditions"] = [{"type": "Ready", "status": ready}]
    return n


def ds(node_selector: dict | None = None, tolerations: list | None = None) -> dict:
    return {"spec": {"template": {"spec": {"nodeSelector": node_selector or {}, "tolerations": tolerations or []}}}}


@pytest.mark.parametrize("daemon, target, runs", [
    (ds(), node("a"), True),
    (ds({"role": "edge"}), node("a", {"role": "edge"}), True),
    (ds({"role": "edge"}), node("a"), False),
    (ds(), node("a", taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]), False),
    (ds(tolerations=[{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]),
     node("a", taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]), True),
    (ds(), node("a", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]), True),
    (ds(), node("a", taints=[{"key": "x", "effect": "PreferNoSchedule"}]), True),
])
def test_daemonset_eligibility(daemon, target, runs):
    assert daemonset.should_run(daemon, target) is runs


def test_daemon_pod_targets_its_node_by_affinity():
    owner = {"metadata": {"name": "agent", "namespace": "ns", "uid": "u", "generation": 2},
             "spec": {"template": {"metadata": {"labels": {"app": "a"}}, "spec": {"hostNetwork": True}}}}
    p = daemonset.pod_for_node(owner, "n1", "abc")
    assert daemonset.node_of(p) == "n1"
    keys = {t["key"] for t in p["spec"]["tolerations"]}
    assert "node.kubernetes.io/network-unavailable" in keys and "node.kubernetes.io/not-ready" in keys
    assert p["metadata"]["labels"] == {"app": "a", "controller-revision-hash": "abc", "pod-template-generation": "2"}


@pytest.mark.parametrize("ready, unschedulable, want", [
    ("True", False, set()),
    ("False", False, {("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/not-ready", "NoSchedule")}),
    ("Unknown", True, {("node.kubernetes.io/unreachable", "NoExecute"),
                       ("node.kubernetes.io/unreachable", "NoSchedule"),
                       ("node.kubernetes.io/unschedulable", "NoSchedule")}),
])
def test_node_taints_follow_ready(ready, unschedulable, want):
    n = node("a", ready=ready, taints=[{"key": "user", "effect": "NoSchedule"}])
    n["spec"]["unschedulable"] = unschedulable
    got = {(t["key"], t["effect"]) for t in nodelifecycle.desired_taints(n, "now")}
    assert got == want | {("user", "NoSchedule")}


def test_unknown_conditions_once():
    n = node("a", ready="True")
    conds = nodelifecycle.unknown_conditions(n, "now")
    assert {c["type"]: c["status"] for c in conds}["Ready"] == "Unknown"
    n["status"]["conditions"] = conds
    assert nodelifecycle.unknown_conditions(n, "now") is None
    fresh = nodelifecycle.unknown_conditions(node("b"), "now")
    assert fresh[0]["reason"] == "NodeStatusNeverUpdated"


UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": "2026-01-01T11:59:50Z"}


@pytest.mark.parametrize("tolerations, delay", [
    ([], 0.0),
    ([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}], None),
    ([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
       "tolerationSeconds": 30}], 20.0),
    ([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
       "tolerationSeconds": 5}], 0.0),
    ([{"operator": "Exists"}], None),
])
def test_eviction_delay(tolerations, delay):
    assert tainteviction.eviction_delay({"spec": {"tolerations": tolerations}}, [UNREACHABLE], NOW) == delay


def test_node_cidrs_skip_used_ranges():
    import ipaddress
    net = ipaddress.ip_network("10.244.0.0/16")
    assert nodeipam.next_free(net, 24, []) == "10.244.0.0/24"
    assert nodeipam.next_free(net, 24, ["10.244.0.0/24", "10.244.1.0/24"]) == "10.244.2.0/24"
    assert nodeipam.next_free(ipaddress.ip_network("10.0.0.0/24"), 24, ["10.0.0.0/24"]) is None


@pytest.mark.parametrize("p, node_exists, why", [
    (pod("a", node="gone"), False, "orphaned"),
    (pod("b", node="here"), True, None),
    (pod("c", deleting=True), True, "unscheduled-terminating"),
])
def test_podgc_decisions(p, node_exists, why):
    assert podgc.decide(p, node_exists) == why


def test_podgc_threshold_takes_oldest_finished():
    done = [pod(f"p{i}", phase="Succeeded", created=f"2026-01-01T0{i}:00:00Z") for i in range(4)]
    assert [p["metadata"]["name"] for p in podgc.over_threshold(done + [pod("live")], 2)] == ["p0", "p1"]


def test_namespace_conditions_say_what_remains():
    conds = {c["type"]: c for c in namespace.conditions({"pods": 2}, {"example.com/x": 1}, [], "now")}
    assert conds["NamespaceContentRemaining"]["status"] == "True"
    assert conds["NamespaceContentRemaining"]["message"] == "Some resources are remaining: pods has 2 resource instances"
    assert conds["NamespaceFinalizersRemaining"]["message"].endswith("example.com/x in 1 resource instances")
    assert conds["NamespaceDeletionContentFailure"]["reason"] == "ContentDeleted"
    clean = {c["type"]: c for c in namespace.conditions({}, {}, [], "now")}
    assert clean["NamespaceContentRemaining"]["reason"] == "ContentRemoved"


# -- job --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, indexes", [("", set()), ("0-2", {0, 1, 2}), ("1,3-5,9", {1, 3, 4, 5, 9})])
def test_completed_indexes_round_trip(text, indexes):
    from provisioner.components.controllers import job
    assert job.parse_indexes(text) == indexes and job.format_indexes(indexes) == text


@pytest.mark.parametrize("spec, succeeded, completed, want", [
    ({"parallelism": 2, "completions": 5}, 4, set(), 1),
    ({"parallelism": 2, "completions": 5}, 0, set(), 2),
    ({"parallelism": 3}, 0, set(), 3),
    ({"parallelism": 3}, 1, set(), 0),
    ({"parallelism": 4, "completions": 3, "completionMode": "Indexed"}, 0, {1}, 2),
])
def test_job_wanted_active(spec, succeeded, completed, want):
    from provisioner.components.controllers import job
    assert job.wanted_active(spec, succeeded, completed) == want


def test_job_backoff_doubles_to_six_minutes():
    from provisioner.components.controllers import job
    assert [job.backoff_delay(n) for n in (0, 1, 2, 3, 10)] == [0.0, 10.0, 20.0, 40.0, 360.0]


# -- cronjob ------------------------------------------------------------------------------------------
def cron(schedule: str, last: str | None = None, created: str = "2026-01-01T10:00:00Z", tz: str | None = None) -> dict:
    cj = {"metadata": {"name": "c", "namespace": "n", "uid": "u", "creationTimestamp": created},
          "spec": {"schedule": schedule}, "status": {}}
    if last:
        cj["status"]["lastScheduleTime"] = last
    if tz:
        cj["spec"]["timeZone"] = tz
    return cj


@pytest.mark.parametrize("cj, latest, upcoming", [
    (cron("*/15 * * * *"), "2026-01-01T12:00:00+00:00", "2026-01-01T12:15:00+00:00"),
    (cron("0 * * * *", last="2026-01-01T12:00:00Z"), None, "2026-01-01T13:00:00+00:00"),
    (cron("@daily", created="2025-12-30T00:00:00Z"), "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00"),
    # noon in Paris is 11:00 UTC in winter
    (cron("0 12 * * *", tz="Europe/Paris", created="2025-12-31T00:00:00Z"), "2026-01-01T11:00:00+00:00",
     "2026-01-02T11:00:00+00:00"),
])
def test_cronjob_schedule_times(cj, latest, upcoming):
    from provisioner.components.controllers import cronjob
    got, nxt, _ = cronjob.most_recent(cj, NOW)
    utc = dt.timezone.utc
    assert (got.astimezone(utc).isoformat() if got else None, nxt.astimezone(utc).isoformat()) == (latest, upcoming)


def test_cronjob_job_name_is_per_schedule_minute():
    from provisioner.components.controllers import cronjob
    t = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    assert cronjob.job_name(cron("* * * * *"), t) == f"c-{int(t.timestamp()) // 60}"


def test_cronjob_history_limits():
    from provisioner.components.controllers import cronjob
    def j(name, kind, start):
        return {"metadata": {"name": name}, "status": {"startTime": start,
                                                       "conditions": [{"type": kind, "status": "True"}]}}
    jobs = [j("a", "Complete", "1"), j("b", "Complete", "2"), j("c", "Failed", "3"), j("d", "Failed", "4")]
    assert [x["metadata"]["name"] for x in cronjob.history_to_delete(jobs, 1, 1)] == ["a", "c"]


# -- statefulset --------------------------------------------------------------------------------------
def sts(replicas=3, policy="OrderedReady", partition=0) -> dict:
    return {"metadata": {"name": "db"}, "spec": {"replicas": replicas, "podManagementPolicy": policy,
                                                 "updateStrategy": {"type": "RollingUpdate",
                                                                    "rollingUpdate": {"partition": partition}}}}


def member(i: int, rev: str = "r1", ready: bool = True) -> dict:
    p = pod(f"db-{i}", ready=ready, phase="Running")
    p["metadata"]["labels"] = {"controller-revision-hash": rev}
    return p


@pytest.mark.parametrize("s, have, create, delete", [
    (sts(), {}, [0], []),
    (sts(), {0: member(0, ready=False)}, [], []),
    (sts(), {0: member(0)}, [1], []),
    (sts(policy="Parallel"), {}, [0, 1, 2], []),
    (sts(replicas=1), {0: member(0), 1: member(1), 2: member(2)}, [], ["db-2"]),
    (sts(replicas=1, policy="Parallel"), {0: member(0), 1: member(1), 2: member(2)}, [], ["db-2", "db-1"]),
    (sts(), {i: member(i, "old") for i in range(3)}, [], ["db-2"]),
    (sts(partition=2), {0: member(0, "old"), 1: member(1, "old"), 2: member(2, "r1")}, [], []),
])
def test_statefulset_steps(s, have, create, delete):
    from provisioner.components.controllers import statefulset
    got_create, got_delete = statefulset.plan(s, have, "r1")
    assert (got_create, [p["metadata"]["name"] for p in got_delete]) == (create, delete)


# -- quota, budgets, aggregation -------------------------------------------------------------------------
def test_pod_requests_take_init_containers_and_overhead():
    from provisioner.components.controllers import resourcequota
    p = {"spec": {"containers": [{"resources": {"requests": {"cpu": "100m"}}},
                                 {"resources": {"requests": {"cpu": "200m"}}}],
                  "initContainers": [{"resources": {"requests": {"cpu": "500m"}}}],
                  "overhead": {"cpu": "10m"}}}
    assert resourcequota.format_quantity("cpu", resourcequota.pod_amount(p, "requests", "cpu")) == "510m"


@pytest.mark.parametrize("resource, value, text", [("cpu", "2", "2"), ("cpu", "0.25", "250m"),
                                                   ("memory", str(3 * 2**30), "3Gi"), ("memory", "1000", "1000")])
def test_quota_quantities(resource, value, text):
    from decimal import Decimal

    from provisioner.components.controllers import resourcequota
    assert resourcequota.format_quantity(resource, Decimal(value)) == text


@pytest.mark.parametrize("spec, healthy, expected, want", [
    ({"minAvailable": 2}, 3, 3, (2, 1)),
    ({"minAvailable": "50%"}, 3, 3, (2, 1)),
    ({"maxUnavailable": 1}, 2, 3, (2, 0)),
    ({"maxUnavailable": "34%"}, 3, 3, (1, 2)),
])
def test_disruption_budget(spec, healthy, expected, want):
    from provisioner.components.controllers import disruption
    pods = [pod(f"p{i}") for i in range(healthy)]
    b = disruption.budget({"spec": spec}, pods, expected)
    assert (b["desiredHealthy"], b["disruptionsAllowed"]) == want


def test_aggregated_rules_union_without_duplicates():
    from provisioner.components.controllers import clusterroleaggregation as cra
    sel = {"aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "y"}}]},
           "metadata": {"name": "top"}}
    r1 = {"verbs": ["get"], "resources": ["pods"]}
    roles = [sel, {"metadata": {"name": "b", "labels": {"agg": "y"}}, "rules": [r1]},
             {"metadata": {"name": "a", "labels": {"agg": "y"}}, "rules": [r1, {"verbs": ["list"]}]},
             {"metadata": {"name": "c"}, "rules": [{"verbs": ["delete"]}]}]
    assert cra.aggregated_rules(sel, roles) == [r1, {"verbs": ["list"]}]


def test_the_provisioners_static_pod_flags_parse(tmp_path):
    """The command line the provisioner puts in kube-controller-manager's static pod is accepted."""
    from provisioner.kube.staticpods import (
        ControlPlanePaths,
        ControlPlaneSettings,
        kube_controller_manager,
    )

    for name in ("ca.crt", "ca.key", "sa.key", "controller-manager.conf"):
        (tmp_path / name).write_text("x")
    paths = ControlPlanePaths(pki_dir=str(tmp_path), etcd_ca=str(tmp_path / "ca.crt"),
                              controller_manager_conf=str(tmp_path / "controller-manager.conf"),
                              scheduler_conf="", encryption_config="")
    settings = ControlPlaneSettings("10.0.0.2", ("https://10.0.0.2:2379",), "10.96.0.0/12", "10.244.0.0/16",
                                    "kubernetes", "cluster.local")
    command = kube_controller_manager("img", paths, settings)["spec"]["containers"][0]["command"]
    options = flags.parse(command[1:], KNOWN, ALIASES)
    assert options.use_service_account_credentials and options.allocate_node_cidrs and options.leader_elect
    assert {"bootstrap-signer-controller", "token-cleaner-controller", "deployment-controller"} <= options.controllers
    assert options.cluster_cidr == "10.244.0.0/16" and options.node_cidr_mask_size == 24


def test_slice_endpoints_carry_node_zone_and_conditions():
    from provisioner.components.controllers import endpointslice
    svc = {"metadata": {"name": "s", "namespace": "n", "uid": "u"},
           "spec": {"selector": {"app": "a"}, "ports": [{"name": "web", "port": 80, "targetPort": 8080}]}}
    p = pod("p", node="n1", labels={"app": "a"})
    p["metadata"].update(namespace="n", uid="pu")
    p["status"]["podIP"] = "10.0.0.5"
    (ports, eps), = endpointslice.desired_slices(svc, [p], {"n1": "zone-a"})
    assert ports == (("web", 8080, "TCP", None),)
    assert eps == [{"addresses": ["10.0.0.5"], "conditions": {"ready": True, "serving": True, "terminating": False},
                    "targetRef": {"kind": "Pod", "namespace": "n", "name": "p", "uid": "pu"},
                    "nodeName": "n1", "zone": "zone-a"}]


@pytest.mark.parametrize("codes, conditions, want", [
    ([("c", 42)], [], "FailJob"),
    ([("c", 1)], [], None),
    ([("c", 1)], [{"type": "DisruptionTarget", "status": "True"}], "Ignore"),
    ([("c", 0), ("d", 3)], [], "Count"),
])
def test_pod_failure_policy_rules(codes, conditions, want):
    from provisioner.components.controllers import job
    spec = {"podFailurePolicy": {"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "Count", "onExitCodes": {"containerName": "d", "operator": "NotIn", "values": [1]}}]}}
    p = {"metadata": {"name": "p", "namespace": "n"},
         "status": {"conditions": conditions,
                    "containerStatuses": [{"name": n, "state": {"terminated": {"exitCode": e}}} for n, e in codes]}}
    verdict = job.failure_policy(spec, p)
    assert (verdict[0] if verdict else None) == want


def test_volume_choice():
    from provisioner.components.controllers import pvbinder

    def pv(name, size, cls="", modes=("ReadWriteOnce",), labels=None, ref=None):
        v = {"metadata": {"name": name, "labels": labels or {}},
             "spec": {"capacity": {"storage": size}, "accessModes": list(modes), "storageClassName": cls}}
        if ref:
            v["spec"]["claimRef"] = ref
        return v

    def pvc(size, cls="", modes=("ReadWriteOnce",), selector=None, name="c"):
        c = {"metadata": {"name": name, "namespace": "n", "uid": "u"},
             "spec": {"accessModes": list(modes), "storageClassName": cls, "resources": {"requests": {"storage": size}}}}
        if selector:
            c["spec"]["selector"] = selector
        return c
    vols = [pv("big", "10Gi"), pv("small", "1Gi"), pv("fast", "2Gi", cls="ssd"), pv("rox", "5Gi", modes=("ReadOnlyMany",)),
            pv("labelled", "3Gi", labels={"tier": "gold"}), pv("taken", "1Gi", ref={"name": "other", "namespace": "n"})]
    assert pvbinder.choose(pvc("1Gi"), vols)["metadata"]["name"] == "small"
    assert pvbinder.choose(pvc("2Gi"), vols)["metadata"]["name"] == "labelled"
    assert pvbinder.choose(pvc("1Gi", cls="ssd"), vols)["metadata"]["name"] == "fast"
    assert pvbinder.choose(pvc("1Gi", modes=("ReadOnlyMany",)), vols)["metadata"]["name"] == "rox"
    assert pvbinder.choose(pvc("1Gi", selector={"matchLabels": {"tier": "gold"}}), vols)["metadata"]["name"] == \
        "labelled"
    assert pvbinder.choose(pvc("1Gi", name="other"), vols)["metadata"]["name"] == "taken"  # pre-bound to it
    assert pvbinder.choose(pvc("20Gi"), vols) is None


def test_daemonset_surge_starts_new_beside_old_then_drops_old():
    def dpod(name, rev, ready=True):
        p = pod(name, ready=ready)
        p["metadata"]["labels"] = {"controller-revision-hash": rev}
        return p
    owner = {"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1,
                                                                                   "maxUnavailable": 0}}}}
    assert daemonset.max_surge(owner, 3) == 1
    by_node = {"a": [dpod("a-old", "r1")], "b": [dpod("b-old", "r1")], "c": []}
    create, delete = daemonset.surge_plan(owner, by_node, {"a", "b", "c"}, "r2", 1, NOW)
    assert (create, delete) == (["c", "a"], [])  # c has nothing; one node surges
    by_node["a"].append(dpod("a-new", "r2", ready=False))
    assert daemonset.surge_plan(owner, by_node, {"a", "b"}, "r2", 1, NOW) == ([], [])  # a still surging
    by_node["a"][1] = dpod("a-new", "r2")
    create, delete = daemonset.surge_plan(owner, by_node, {"a", "b"}, "r2", 1, NOW)
    assert [p["metadata"]["name"] for p in delete] == ["a-old"] and create == ["b"]


@pytest.mark.parametrize("current, nodes, want", [(0, 50, 0), (0, 101, 1), (1, 95, 1), (1, 89, 0), (0, 3000, 4),
                                                  (4, 1799, 3)])
def test_node_ttl_boundaries(current, nodes, want):
    from provisioner.components.controllers import ttl
    assert ttl.step(current, nodes) == want


@pytest.mark.parametrize("rules, completed, want", [
    ([{"succeededIndexes": "0-1"}], {0, 1}, 0),
    ([{"succeededIndexes": "0-1"}], {0, 2}, None),
    ([{"succeededCount": 2}], {3, 5}, 0),
    ([{"succeededIndexes": "0-4", "succeededCount": 2}], {1, 7}, None),
    ([{"succeededIndexes": "9"}, {"succeededIndexes": "0-4", "succeededCount": 2}], {1, 3}, 1),
])
def test_job_success_policy(rules, completed, want):
    from provisioner.components.controllers import job
    assert job.success_policy_match({"successPolicy": {"rules": rules}}, completed) == want


def test_statefulset_ordinals_start():
    from provisioner.components.controllers import statefulset
    s = sts(replicas=2, policy="Parallel")
    s["spec"]["ordinals"] = {"start": 5}
    assert statefulset.plan(s, {}, "r1") == ([5, 6], [])
    have = {i: member(i) for i in (0, 5, 6)}
    create, delete = statefulset.plan(s, have, "r1")
    assert (create, [p["metadata"]["name"] for p in delete]) == ([], ["db-0"])
