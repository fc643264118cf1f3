"""The real kube-scheduler process against a real API server, with Node objects for kubelets."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.request

from .conftest import SCHEDULER, eventually, node, pod

CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def test_pods_are_bound_and_an_unschedulable_pod_is_told_why_in_kube_schedulers_words(env):
    env.apply(node("n1"), node("n2", taints=[CP_TAINT]), node("n3", cpu="1"))
    kc = str(env.cluster.kubeconfig)  # kubeadm passes the scheduler's kubeconfig for both
    sched = env.scheduler("--leader-elect=false", "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc)
    env.apply(pod("small", cpu="100m"), pod("big", cpu="3"), pod("huge", cpu="8"),
              pod("elsewhere", schedulerName="other-scheduler"))
    assert env.wait_bound("small") in ("n1", "n3")
    assert env.wait_bound("big") == "n1"
    expected = ("0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
                "2 Insufficient cpu.")
    message = env.failed_message("huge")
    assert message.startswith(expected)
    assert message.endswith("preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
                            "2 No preemption victims found for incoming pod.")
    cond = [c for c in env.pod("huge")["status"]["conditions"] if c["type"] == "PodScheduled"][0]
    assert cond["reason"] == "Unschedulable"
    events = eventually(lambda: [e for e in env.events("huge") if e["reason"] == "FailedScheduling"])
    assert events[0]["type"] == "Warning" and events[0]["message"] == message
    assert events[0]["source"]["component"] == "default-scheduler"
    scheduled = eventually(lambda: [e for e in env.events("big") if e["reason"] == "Scheduled"])
    assert scheduled[0]["message"] == "Successfully assigned default/big to n1"
    # a pod for another scheduler is left alone: unbound, no condition, no events
    assert env.node_of("elsewhere") is None
    assert not env.pod("elsewhere")["status"].get("conditions") and not env.events("elsewhere")
    # kubectl describe shows the reason as users know it
    assert "FailedScheduling" in env.kubectl("describe", "pod", "huge").stdout
    # metrics on the secure port, for a system:masters client certificate
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.load_cert_chain(str(env.cluster.pki / "admin.crt"), str(env.cluster.pki / "admin.key"))
    with urllib.request.urlopen(f"https://127.0.0.1:{sched.port}/metrics", context=ctx, timeout=10) as r:
        text = r.read().decode()
    assert 'scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"} 2.0' in text


def test_an_unschedulable_pod_is_retried_when_a_node_is_added_a_taint_removed_or_a_pod_deleted(env):
    env.apply(node("tainted", taints=[{"key": "maintenance", "value": "yes", "effect": "NoSchedule"}]),
              node("small", cpu="1"))
    env.scheduler("--leader-elect=false")
    env.apply(pod("wants-ssd", nodeSelector={"disk": "ssd"}), pod("hog", cpu="900m", nodeSelector={
        "kubernetes.io/hostname": "small"}))
    assert env.wait_bound("hog") == "small"
    env.apply(pod("needs-room", cpu="500m", nodeSelector={"kubernetes.io/hostname": "small"}))
    env.failed_message("wants-ssd")
    assert "Insufficient cpu" in env.failed_message("needs-room")

    env.apply(node("ssd", labels={"disk": "ssd"}))  # a node added
    assert env.wait_bound("wants-ssd") == "ssd"

    env.apply(pod("tolerates-nothing", nodeSelector={"kubernetes.io/hostname": "tainted"}))
    assert "untolerated taint {maintenance: yes}" in env.failed_message("tolerates-nothing")
    env.kubectl("taint", "node", "tainted", "maintenance-")  # a taint removed
    assert env.wait_bound("tolerates-nothing") == "tainted"

    env.kubectl("delete", "pod", "hog", "--grace-period=0", "--force")  # a pod deleted
    assert env.wait_bound("needs-room") == "small"



def owned_pod(name: str, uid: str, **kw) -> dict:
    p = pod(name, cpu="100m", **kw)
    p["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                         "uid": uid, "controller": True}]
    return p


def test_replicas_of_one_workload_land_on_different_nodes(env):
    env.apply(*(node(f"w{i}") for i in range(3)))
    env.scheduler("--leader-elect=false")
    env.apply(*(owned_pod(f"web-{i}", "6a1b2c3d-0000-4000-8000-000000000001") for i in range(6)))
    placed = [env.wait_bound(f"web-{i}") for i in range(6)]
    assert sorted(placed.count(n) for n in ("w0", "w1", "w2")) == [2, 2, 2], placed


def test_required_spread_and_anti_affinity_are_honoured(env):
    env.apply(node("a", cpu="64", labels={"zone": "z1"}), node("b", cpu="2", labels={"zone": "z2"}))
    env.scheduler("--leader-elect=false")
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}]}}
    env.apply(*(pod(f"db-{i}", labels={"app": "db"}, affinity=anti) for i in range(3)))
    bound = eventually(lambda: [n for n in (env.node_of(f"db-{i}") for i in range(3)) if n] or None, what="db bound")
    pending = eventually(lambda: [f"db-{i}" for i in range(3) if env.node_of(f"db-{i}") is None
                                  and env.pod(f"db-{i}")["status"].get("conditions")], what="one db pod refused")
    bound = [n for n in (env.node_of(f"db-{i}") for i in range(3)) if n]
    assert sorted(bound) == ["a", "b"] and len(pending) == 1
    assert env.failed_message(pending[0]).startswith(
        "0/2 nodes are available: 2 node(s) didn't satisfy existing pods anti-affinity rules.")

    # the big node would win every score, but a zone may hold at most one more web pod than the other
    spread = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "web"}}}]
    env.apply(*(pod(f"web-{i}", cpu="100m", labels={"app": "web"}, topologySpreadConstraints=spread)
                for i in range(4)))
    placed = [env.wait_bound(f"web-{i}") for i in range(4)]
    assert sorted(placed) == ["a", "a", "b", "b"], placed


def priority_class(name: str, value: int) -> dict:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value}


def test_a_higher_priority_pod_preempts_lower_priority_pods_gracefully(env):
    env.apply(node("only", cpu="2"), priority_class("low", 10), priority_class("high", 1000))
    env.scheduler("--leader-elect=false")
    env.apply(pod("low-1", cpu="900m", priorityClassName="low", priority=10),
              pod("low-2", cpu="900m", priorityClassName="low", priority=10))
    env.wait_bound("low-1")
    env.wait_bound("low-2")
    env.apply(pod("high", cpu="1", priorityClassName="high", priority=1000))
    nominated = eventually(lambda: env.pod("high")["status"].get("nominatedNodeName"), what="nominatedNodeName")
    assert nominated == "only"

    def terminating():
        pods = env.get("pods")["items"]
        return [p["metadata"]["name"] for p in pods if p["metadata"].get("deletionTimestamp")]
    victims = eventually(terminating, what="a victim marked for graceful deletion")
    assert len(victims) == 1  # one low pod is enough: the other is spared
    victim = env.pod(victims[0])
    assert victim["metadata"]["deletionGracePeriodSeconds"] > 0
    assert any(c["type"] == "DisruptionTarget" and c["reason"] == "PreemptionByScheduler"
               for c in victim["status"]["conditions"])
    assert env.node_of("high") is None  # it waits for the victim to go
    env.kubectl("delete", "pod", victims[0], "--grace-period=0", "--force")  # what the kubelet would do
    assert env.wait_bound("high") == "only"
    preempted = eventually(lambda: [e for e in env.events(victims[0]) if e["reason"] == "Preempted"])
    assert preempted[0]["message"].startswith("Preempted by pod ")


CONFIG = """apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: packer
  plugins:
    filter:
      disabled: [{name: TaintToleration}]
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy: {type: MostAllocated}
"""


def test_profiles_from_the_configuration_file(env, tmp_path):
    cfg = tmp_path / "sched.yaml"
    cfg.write_text(CONFIG)
    env.apply(node("full"), node("empty"), node("tainted", taints=[CP_TAINT]))
    env.scheduler("--leader-elect=false", "--config", str(cfg))
    env.apply(pod("seed", cpu="2", nodeSelector={"kubernetes.io/hostname": "full"}))
    env.wait_bound("seed")
    env.apply(pod("packed", cpu="1", schedulerName="packer", nodeSelector={"kubernetes.io/hostname": "tainted"}),
              pod("packed-2", cpu="1", schedulerName="packer", affinity={"nodeAffinity": {
                  "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
                      {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["tainted"]}]}]}}}),
              pod("spread", cpu="1"))
    assert env.wait_bound("packed") == "tainted"  # the packer profile ignores taints
    assert env.wait_bound("packed-2") == "full"  # and packs onto the busier node
    assert env.wait_bound("spread") == "empty"  # the default profile spreads
    sources = eventually(lambda: {e["source"]["component"] for e in env.events("packed") if e["reason"] == "Scheduled"})
    assert sources == {"packer"}  # events name the profile that scheduled the pod


def run_scheduler(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SCHEDULER, *args], capture_output=True, text=True, timeout=60)


def test_bad_flags_and_configuration_stop_the_scheduler_with_one_clear_line(env, tmp_path):
    kc = str(env.cluster.kubeconfig)
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.replace("schedulerName: packer", "schedulerName: packer\n  percentageOfNodesToScor: 5")
                   .replace("TaintToleration", "TaintTolerations"))
    cases = [
        (["--kubeconfig", kc, "--no-such-flag"], "unknown flag(s): --no-such-flag"),
        (["--config", str(tmp_path / "missing.yaml"), "--kubeconfig", kc], "missing.yaml: No such file or directory"),
        (["--config", str(bad), "--kubeconfig", kc], "profiles[1].percentageOfNodesToScor: unknown field"),
        (["--leader-elect-lease-duration", "fifteen", "--kubeconfig", kc], "'fifteen' is not a duration"),
        ([], "--kubeconfig (or clientConnection.kubeconfig in --config) is required"),
        (["--kubeconfig", str(tmp_path / "nope.conf")], "--kubeconfig"),
    ]
    for args, expected in cases:
        proc = run_scheduler(*args)
        assert proc.returncode == 1, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ERROR: ") and expected in lines[0], (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    unknown_plugin = tmp_path / "plugin.yaml"
    unknown_plugin.write_text(CONFIG.replace("TaintToleration", "TaintTolerations"))
    proc = run_scheduler("--config", str(unknown_plugin), "--kubeconfig", kc)
    assert "profiles[1].plugins.filter.disabled[0].name: unknown plugin 'TaintTolerations'" in proc.stderr


def lease_holder(env) -> str:
    proc = env.kubectl("get", "lease", "kube-scheduler", "-n", "kube-system", "-o", "json", check=False)
    return json.loads(proc.stdout)["spec"].get("holderIdentity", "") if proc.returncode == 0 else ""


def test_only_the_lease_holder_schedules_and_a_standby_takes_over(env):
    env.apply(node("n"))
    first = env.scheduler("--leader-elect=true")
    holder = eventually(lambda: lease_holder(env), what="a lease holder")
    second = env.scheduler("--leader-elect=true")
    env.apply(pod("p1"))
    env.wait_bound("p1")
    assert lease_holder(env) == holder
    first.terminate()  # a clean stop releases the lease: the standby takes over without waiting it out
    assert first.wait(15) == 0
    eventually(lambda: lease_holder(env) not in ("", holder), 20, "the standby holds the lease")
    env.apply(pod("p2"))
    env.wait_bound("p2")
    assert second.poll() is None
    lease = env.get("lease", "kube-scheduler", "-n", "kube-system")["spec"]
    assert lease["leaseDurationSeconds"] == 15 and lease["leaseTransitions"] >= 1


def test_the_scheduler_rides_out_an_api_server_restart(env):
    import subprocess as sp

    from provisioner.dev import die_with_parent

    env.apply(node("n"))
    sched = env.scheduler("--leader-elect=true")
    env.apply(pod("before"))
    env.wait_bound("before")
    cluster = env.cluster
    api = cluster.procs[1]
    api.terminate()
    api.wait(15)
    log = open(cluster.root / "logs" / "apiserver-2.log", "ab")
    cluster.procs[1] = sp.Popen(cluster.apiserver_command(cluster.api_port), stdout=log, stderr=sp.STDOUT,
                                preexec_fn=die_with_parent())
    cluster.wait_ready(30)
    env.apply(pod("after"))
    assert env.wait_bound("after", timeout=60) == "n"  # its informers listed and watched again
    assert sched.poll() is None
