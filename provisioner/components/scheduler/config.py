"""KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1): read, check, and turn into profiles.

The accepted shape is a table (SCHEMA) rather than code: every field kube-scheduler's v1 type has is
listed with its type, so an unknown or mistyped field is an error naming its path
("profiles[0].plugins.filter.enabled[1].nme: unknown field"). A profile's plugins start from
kube-scheduler's defaults; `disabled` removes (`*` removes all), `enabled` appends or re-weights.
Plugins kube-scheduler has but this scheduler has no work for (volume plugins: there are no
volumes to bind here) may be named and are accepted as no-ops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .filters import FILTERS
from .scores import DEFAULT_WEIGHTS, SCORES

API_VERSION = "kubescheduler.config.k8s.io/v1"
DEFAULT_SCHEDULER = "default-scheduler"
NO_OP_PLUGINS = {"PrioritySort", "DefaultBinder", "VolumeBinding", "VolumeRestrictions", "VolumeZone",
                 "NodeVolumeLimits", "EBSLimits", "GCEPDLimits", "AzureDiskLimits", "DynamicResources",
                 "SchedulingGates", "NodeDeclaredFeatures"}
KNOWN_PLUGINS = set(FILTERS) | set(SCORES) | {"DefaultPreemption", "NodeResourcesBalancedAllocation"} | NO_OP_PLUGINS
EXTENSION_POINTS = ("preEnqueue", "queueSort", "preFilter", "filter", "postFilter", "preScore", "score",
                    "reserve", "permit", "preBind", "bind", "postBind", "multiPoint")

# field -> type: str/int/bool/float/dict (free-form), a nested dict schema, or [schema] for lists
PLUGIN = {"name": str, "weight": int}
PLUGIN_SET = {"enabled": [PLUGIN], "disabled": [PLUGIN]}
PROFILE = {"schedulerName": str, "percentageOfNodesToScore": int,
           "plugins": {p: PLUGIN_SET for p in EXTENSION_POINTS},
           "pluginConfig": [{"name": str, "args": dict}]}
SCHEMA = {
    "apiVersion": str, "kind": str, "parallelism": int, "percentageOfNodesToScore": int,
    "podInitialBackoffSeconds": int, "podMaxBackoffSeconds": int, "delayCacheUntilActive": bool,
    "enableProfiling": bool, "enableContentionProfiling": bool,
    "clientConnection": {"kubeconfig": str, "acceptContentTypes": str, "contentType": str, "qps": float,
                         "burst": int},
    "leaderElection": {"leaderElect": bool, "leaseDuration": str, "renewDeadline": str, "retryPeriod": str,
                       "resourceLock": str, "resourceName": str, "resourceNamespace": str},
    "profiles": [PROFILE],
    "extenders": [dict],
}
# pluginConfig args this scheduler reads: kind name -> schema
PLUGIN_ARGS = {
    "NodeResourcesFit": {"kind": str, "apiVersion": str, "ignoredResources": [str], "ignoredResourceGroups": [str],
                         "scoringStrategy": {"type": str, "resources": [{"name": str, "weight": int}],
                                             "requestedToCapacityRatio": dict}},
    "PodTopologySpread": {"kind": str, "apiVersion": str, "defaultConstraints": [dict], "defaultingType": str},
    "InterPodAffinity": {"kind": str, "apiVersion": str, "hardPodAffinityWeight": int,
                         "ignorePreferredTermsOfExistingPods": bool},
    "DefaultPreemption": {"kind": str, "apiVersion": str, "minCandidateNodesPercentage": int,
                          "minCandidateNodesAbsolute": int},
    "NodeAffinity": {"kind": str, "apiVersion": str, "addedAffinity": dict},
    "NodeResourcesBalancedAllocation": {"kind": str, "apiVersion": str, "resources": [{"name": str, "weight": int}]},
}
SCORING_STRATEGIES = ("LeastAllocated", "MostAllocated")


class ConfigError(ValueError):
    pass


DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
LEADER_DEFAULTS = {"leaseDuration": 15.0, "renewDeadline": 10.0, "retryPeriod": 2.0,
                   "resourceName": "kube-scheduler", "resourceNamespace": "kube-system"}


def duration(value: str) -> float:
    """A Go-style duration ("15s", "500ms", "1m") in seconds."""
    m = DURATION.match(str(value).strip())
    if not m:
        raise ValueError(f"{value!r} is not a duration (e.g. 15s, 500ms, 1m)")
    return float(m.group(1)) * UNITS[m.group(2)]


def check(value: Any, schema: Any, where: str) -> list[str]:
    """Every problem with `value` against `schema`, each naming its path."""
    names = {str: "a string", int: "an integer", bool: "true or false", float: "a number", dict: "a mapping"}
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{where}: must be a list"]
        return [e for i, item in enumerate(value) for e in check(item, schema[0], f"{where}[{i}]")]
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{where}: must be a mapping"]
        errors = []
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if key not in schema:
                errors.append(f"{path}: unknown field")
            elif item is not None:
                errors.extend(check(item, schema[key], path))
        return errors
    ok = isinstance(value, schema) and not (schema is int and isinstance(value, bool))
    if schema is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return [] if ok else [f"{where}: must be {names[schema]}"]


@dataclass
class Profile:
    scheduler_name: str = DEFAULT_SCHEDULER
    filters: list[str] = field(default_factory=lambda: list(FILTERS))
    scores: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    preemption: bool = True
    plugin_args: dict[str, dict] = field(default_factory=dict)
    percentage_of_nodes_to_score: int = 0


@dataclass
class SchedulerConfig:
    profiles: list[Profile] = field(default_factory=lambda: [Profile()])
    initial_backoff: float = 1.0
    max_backoff: float = 10.0
    percentage_of_nodes_to_score: int = 0
    parallelism: int = 16
    leader_elect: bool | None = None
    leader_election: dict = field(default_factory=dict)  # only what the file sets, durations in seconds
    kubeconfig: str | None = None


def _apply(current: list[str], plugin_set: dict, known: set[str], where: str, errors: list[str]) -> list[str]:
    disabled = {p.get("name") for p in plugin_set.get("disabled") or []}
    out = [] if "*" in disabled else [p for p in current if p not in disabled]
    for i, p in enumerate(plugin_set.get("enabled") or []):
        name = p.get("name")
        if name not in KNOWN_PLUGINS:
            errors.append(f"{where}.enabled[{i}].name: unknown plugin {name!r}")
        elif name in known and name not in out:
            out.append(name)
    for i, p in enumerate(plugin_set.get("disabled") or []):
        if p.get("name") != "*" and p.get("name") not in KNOWN_PLUGINS:
            errors.append(f"{where}.disabled[{i}].name: unknown plugin {p.get('name')!r}")
    return out


def _profile(doc: dict, where: str, errors: list[str]) -> Profile:
    prof = Profile(scheduler_name=doc.get("schedulerName") or DEFAULT_SCHEDULER,
                   percentage_of_nodes_to_score=int(doc.get("percentageOfNodesToScore") or 0))
    plugins = doc.get("plugins") or {}
    multi = plugins.get("multiPoint") or {}
    filters = _apply(prof.filters, multi, set(FILTERS), f"{where}.plugins.multiPoint", errors)
    prof.filters = _apply(filters, plugins.get("filter") or {}, set(FILTERS), f"{where}.plugins.filter", errors)
    scores = _apply(list(prof.scores), multi, set(SCORES), f"{where}.plugins.multiPoint", [])
    scores = _apply(scores, plugins.get("score") or {}, set(SCORES), f"{where}.plugins.score", errors)
    weights = {}
    for point in ("multiPoint", "score"):
        for i, p in enumerate((plugins.get(point) or {}).get("enabled") or []):
            if p.get("weight") is not None:
                if p["weight"] <= 0 or p["weight"] > 100:
                    errors.append(f"{where}.plugins.{point}.enabled[{i}].weight: must be between 1 and 100")
                weights[p["name"]] = p["weight"]
    prof.scores = {name: weights.get(name, DEFAULT_WEIGHTS.get(name, 1)) for name in scores}
    post = _apply(["DefaultPreemption"], plugins.get("postFilter") or {}, {"DefaultPreemption"},
                  f"{where}.plugins.postFilter", errors)
    post = _apply(post, multi, {"DefaultPreemption"}, f"{where}.plugins.multiPoint", [])
    prof.preemption = "DefaultPreemption" in post
    for i, pc in enumerate(doc.get("pluginConfig") or []):
        name = pc.get("name")
        if name not in PLUGIN_ARGS:
            errors.append(f"{where}.pluginConfig[{i}].name: no arguments for plugin {name!r}")
            continue
        args = pc.get("args") or {}
        errors.extend(check(args, PLUGIN_ARGS[name], f"{where}.pluginConfig[{i}].args"))
        strategy = (args.get("scoringStrategy") or {}).get("type")
        if name == "NodeResourcesFit" and strategy and strategy not in SCORING_STRATEGIES:
            errors.append(f"{where}.pluginConfig[{i}].args.scoringStrategy.type: must be one of "
                          f"{', '.join(SCORING_STRATEGIES)}")
        prof.plugin_args[name] = args
    return prof


def parse(doc: Any, source: str = "config") -> SchedulerConfig:
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: must be a KubeSchedulerConfiguration mapping")
    errors = check(doc, SCHEMA, "")
    if doc.get("apiVersion") != API_VERSION:
        errors.append(f"apiVersion: must be {API_VERSION} (got {doc.get('apiVersion')!r})")
    if doc.get("kind") != "KubeSchedulerConfiguration":
        errors.append(f"kind: must be KubeSchedulerConfiguration (got {doc.get('kind')!r})")
    if errors:  # shape errors first: building profiles from a malformed document would only add noise
        raise ConfigError(f"{source}: " + "; ".join(errors))
    cfg = SchedulerConfig(initial_backoff=float(doc.get("podInitialBackoffSeconds") or 1),
                          max_backoff=float(doc.get("podMaxBackoffSeconds") or 10),
                          percentage_of_nodes_to_score=int(doc.get("percentageOfNodesToScore") or 0),
                          parallelism=int(doc.get("parallelism") or 16))
    if cfg.initial_backoff > cfg.max_backoff:
        errors.append("podInitialBackoffSeconds: must not exceed podMaxBackoffSeconds")
    for key, value in (("percentageOfNodesToScore", cfg.percentage_of_nodes_to_score),):
        if not 0 <= value <= 100:
            errors.append(f"{key}: must be between 0 and 100")
    le = doc.get("leaderElection") or {}
    cfg.leader_elect = le.get("leaderElect")
    for key in ("leaseDuration", "renewDeadline", "retryPeriod"):
        if le.get(key) is not None:
            try:
                cfg.leader_election[key] = duration(le[key])
            except ValueError as exc:
                errors.append(f"leaderElection.{key}: {exc}")
    for key in ("resourceName", "resourceNamespace"):
        if le.get(key):
            cfg.leader_election[key] = le[key]
    cfg.kubeconfig = (doc.get("clientConnection") or {}).get("kubeconfig") or None
    if doc.get("profiles"):
        cfg.profiles = [_profile(p, f"profiles[{i}]", errors) for i, p in enumerate(doc["profiles"])]
    seen: set[str] = set()
    for i, prof in enumerate(cfg.profiles):
        if prof.scheduler_name in seen:
            errors.append(f"profiles[{i}].schedulerName: duplicate {prof.scheduler_name!r}")
        seen.add(prof.scheduler_name)
    if errors:
        raise ConfigError(f"{source}: " + "; ".join(errors))
    return cfg


def load(path: str) -> SchedulerConfig:
    try:
        with open(path) as fh:
            doc = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"--config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config {path}: not YAML ({exc})") from None
    return parse(doc, path)
