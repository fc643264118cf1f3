"""KubeSchedulerConfiguration parsing: profiles, plugin enablement and weights, strict fields."""

from __future__ import annotations

import pytest

from provisioner.components.scheduler import config

BASE = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration"}


def parse(**doc) -> config.SchedulerConfig:
    return config.parse(dict(BASE, **doc))


def test_defaults_match_kube_scheduler():
    cfg = parse()
    prof = cfg.profiles[0]
    assert prof.scheduler_name == "default-scheduler" and prof.preemption
    assert prof.filters[:3] == ["NodeUnschedulable", "NodeName", "TaintToleration"]
    assert prof.scores == {"TaintToleration": 3, "NodeAffinity": 2, "NodeResourcesFit": 1, "PodTopologySpread": 2,
                           "InterPodAffinity": 2, "NodeResourcesBalancedAllocation": 1, "ImageLocality": 1}
    assert (cfg.initial_backoff, cfg.max_backoff) == (1.0, 10.0)


PROFILE_CASES = [
    ("disable one filter", {"filter": {"disabled": [{"name": "NodePorts"}]}},
     lambda p: "NodePorts" not in p.filters and "NodeResourcesFit" in p.filters),
    ("disable every score, enable one with a weight",
     {"score": {"disabled": [{"name": "*"}], "enabled": [{"name": "ImageLocality", "weight": 7}]}},
     lambda p: p.scores == {"ImageLocality": 7}),
    ("re-weight a default score", {"score": {"enabled": [{"name": "NodeResourcesFit", "weight": 5}]}},
     lambda p: p.scores["NodeResourcesFit"] == 5 and p.scores["TaintToleration"] == 3),
    ("no preemption", {"postFilter": {"disabled": [{"name": "DefaultPreemption"}]}}, lambda p: not p.preemption),
    ("multiPoint disables a plugin everywhere", {"multiPoint": {"disabled": [{"name": "TaintToleration"}]}},
     lambda p: "TaintToleration" not in p.filters and "TaintToleration" not in p.scores),
    ("volume plugins are accepted", {"filter": {"disabled": [{"name": "VolumeBinding"}]}},
     lambda p: "NodeResourcesFit" in p.filters),
]


@pytest.mark.parametrize("case", PROFILE_CASES, ids=[c[0] for c in PROFILE_CASES])
def test_profile_plugins(case):
    _, plugins, check = case
    assert check(parse(profiles=[{"schedulerName": "x", "plugins": plugins}]).profiles[0])


ERROR_CASES = [
    ("unknown top-level field", {"podMaxBackofSeconds": 3}, "podMaxBackofSeconds: unknown field"),
    ("wrong type", {"podMaxBackoffSeconds": "10s"}, "podMaxBackoffSeconds: must be an integer"),
    ("wrong version", {"apiVersion": "kubescheduler.config.k8s.io/v1beta3"}, "apiVersion: must be"),
    ("unknown plugin", {"profiles": [{"plugins": {"score": {"enabled": [{"name": "Magic"}]}}}]},
     "profiles[0].plugins.score.enabled[0].name: unknown plugin 'Magic'"),
    ("unknown extension point", {"profiles": [{"plugins": {"filters": {}}}]}, "profiles[0].plugins.filters: unknown"),
    ("bad weight", {"profiles": [{"plugins": {"score": {"enabled": [{"name": "ImageLocality", "weight": 0}]}}}]},
     "weight: must be between 1 and 100"),
    ("duplicate profile", {"profiles": [{"schedulerName": "a"}, {"schedulerName": "a"}]},
     "profiles[1].schedulerName: duplicate 'a'"),
    ("unknown args field", {"profiles": [{"pluginConfig": [{"name": "NodeResourcesFit", "args": {"strategy": 1}}]}]},
     "profiles[0].pluginConfig[0].args.strategy: unknown field"),
    ("unknown scoring strategy", {"profiles": [{"pluginConfig": [
        {"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "Random"}}}]}]},
     "args.scoringStrategy.type: must be one of LeastAllocated, MostAllocated"),
    ("backoff order", {"podInitialBackoffSeconds": 20}, "podInitialBackoffSeconds: must not exceed"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_configuration_names_the_field(case):
    _, doc, expected = case
    with pytest.raises(config.ConfigError) as exc:
        config.parse(dict(BASE, **doc), "sched.yaml")
    assert expected in str(exc.value) and str(exc.value).startswith("sched.yaml: ")


def test_leader_election_settings_from_the_file_and_flags():
    import tempfile

    from provisioner.components.scheduler.main import settings
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="scheduler-cfg-") as fh:
        fh.write("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
                 "clientConnection: {kubeconfig: /etc/kubernetes/scheduler.conf}\n"
                 "leaderElection: {leaderElect: false, leaseDuration: 30s, resourceName: my-scheduler}\n")
        fh.flush()
        args, _ = settings(["--config", fh.name, "--leader-elect-retry-period", "500ms"])
    assert args.kubeconfig == "/etc/kubernetes/scheduler.conf" and args.leader_elect is False
    assert args.leader_election == {"leaseDuration": 30.0, "renewDeadline": 10.0, "retryPeriod": 0.5,
                                    "resourceName": "my-scheduler", "resourceNamespace": "kube-system"}
    with pytest.raises(config.ConfigError, match="leaderElection.leaseDuration: 'long' is not a duration"):
        parse(leaderElection={"leaseDuration": "long"})
