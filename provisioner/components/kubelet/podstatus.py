"""kubelet: a pod's status as kubelet reports it, from the relist and the worker's memory.

Phase, the conditions (PodScheduled, PodReadyToStartContainers, Initialized, ContainersReady,
Ready), container and init-container statuses with state, lastState, restartCount, ready,
started, image, imageID and containerID; pod and host IPs, start time and QoS class.
"""

from __future__ import annotations

import datetime as dt

from . import podspec
from .runtimeview import ContainerView, Snapshot


def _time(text: str | None) -> str | None:
    if not text or text.startswith("0001-"):
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def terminated(worker, instance: ContainerView) -> dict:
    code = instance.exit_code if instance.exit_code is not None else 137
    reason = "OOMKilled" if instance.oom_killed else ("Completed" if code == 0 else "Error")
    out = {"exitCode": code, "reason": reason, "startedAt": _time(instance.started_at),
           "finishedAt": _time(instance.finished_at), "containerID": instance.container_id}
    message = worker.termination_message(instance.name, instance)
    if message:
        out["message"] = message
    return out


def container_status(worker, container: dict, snapshot: Snapshot, init: bool) -> dict:
    name = container["name"]
    instances = snapshot.instances(worker.uid, name)
    memory = worker.mem(name)
    latest = instances[0] if instances else None
    out = {"name": name, "image": container["image"], "imageID": "",
           "restartCount": latest.restart_count if latest else 0,
           "ready": False, "started": False, "state": {}, "lastState": {}}
    if latest is not None:
        out["imageID"] = latest.image_id
        out["containerID"] = latest.container_id
        out["ready"] = worker.ready(container, latest) if not init else \
            latest.state == "exited" and latest.exit_code == 0
        out["started"] = worker.started(container, latest)
    if len(instances) > 1 and instances[1].state == "exited":
        out["lastState"] = {"terminated": terminated(worker, instances[1])}
    waiting = memory.waiting
    if latest is not None and latest.state == "running" and waiting is None:
        out["state"] = {"running": {"startedAt": _time(latest.started_at)}}
    elif waiting is not None and (latest is None or latest.state != "running"):
        if latest is not None and latest.state == "exited":
            out["lastState"] = {"terminated": terminated(worker, latest)}
        out["state"] = {"waiting": {"reason": waiting.reason, "message": waiting.message}}
    elif latest is not None and latest.state == "exited":
        out["state"] = {"terminated": terminated(worker, latest)}
    elif latest is not None and latest.state == "running":
        out["state"] = {"running": {"startedAt": _time(latest.started_at)}}
    else:
        out["state"] = {"waiting": {"reason": "PodInitializing" if not init and
                                    worker.pod["spec"].get("initContainers") else
                                    "ContainerCreating"}}
    return out


def phase_of(pod: dict, statuses: list[dict], init_statuses: list[dict], initialized: bool) -> str:
    policy = pod["spec"].get("restartPolicy", "Always")
    if any("terminated" in s["state"] and s["state"]["terminated"]["exitCode"] != 0
           for s in init_statuses) and policy == "Never":
        return "Failed"
    if not initialized:
        return "Pending"
    running = sum(1 for s in statuses if "running" in s["state"])
    ended = [s["state"]["terminated"] for s in statuses if "terminated" in s["state"]]
    waiting = [s for s in statuses if "waiting" in s["state"]]
    if waiting and not any(s["lastState"] for s in waiting):
        return "Pending"
    if running or waiting:
        return "Running"
    if len(ended) == len(statuses):
        if all(t["exitCode"] == 0 for t in ended):
            return "Succeeded" if policy != "Always" else "Running"
        return "Failed" if policy == "Never" else "Running"
    return "Pending"


def _condition(ctype: str, ok: bool, previous: dict, reason: str = "") -> dict:
    status = "True" if ok else "False"
    old = previous.get(ctype)
    when = old["lastTransitionTime"] if old and old.get("status") == status else \
        dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": when}
    if not ok and reason:
        out["reason"] = reason
    return out


def build_status(worker, snapshot: Snapshot, sandbox, final: bool = False) -> dict:
    pod = worker.pod
    kubelet = worker.kubelet
    spec = pod["spec"]
    init_statuses = [container_status(worker, c, snapshot, True)
                     for c in spec.get("initContainers") or []]
    statuses = [container_status(worker, c, snapshot, False) for c in spec["containers"]]
    initialized = all(s["ready"] for s in init_statuses)
    phase = phase_of(pod, statuses, init_statuses, initialized)
    if final and phase not in ("Succeeded", "Failed"):
        phase = "Failed" if spec.get("restartPolicy", "Always") == "Never" else "Succeeded"
        for s in statuses:
            if "running" in s["state"]:
                s["state"] = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    containers_ready = all(s["ready"] for s in statuses) and phase == "Running"
    previous = {c["type"]: c for c in (pod.get("status") or {}).get("conditions") or []}
    conditions = [
        _condition("PodReadyToStartContainers", sandbox is not None, previous),
        _condition("Initialized", initialized, previous, "ContainersNotInitialized"),
        _condition("Ready", containers_ready, previous, "ContainersNotReady"),
        _condition("ContainersReady", containers_ready, previous, "ContainersNotReady"),
        _condition("PodScheduled", True, previous),
    ]
    status = {"phase": phase, "conditions": conditions, "hostIP": kubelet.node_ip,
              "hostIPs": [{"ip": kubelet.node_ip}], "qosClass": podspec.qos_class(pod),
              "containerStatuses": statuses}
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    if worker.start_time:
        status["startTime"] = worker.start_time
    ip = (sandbox.ip if sandbox is not None else None) or \
        (kubelet.node_ip if sandbox is not None and spec.get("hostNetwork") else None)
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    elif (pod.get("status") or {}).get("podIP"):
        status["podIP"] = pod["status"]["podIP"]
        status["podIPs"] = pod["status"].get("podIPs") or [{"ip": pod["status"]["podIP"]}]
    return status
