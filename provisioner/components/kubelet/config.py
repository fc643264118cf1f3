"""kubelet: the KubeletConfiguration file (kubelet.config.k8s.io/v1beta1) and its defaults.

`load` reads the file named by --config, refuses unknown fields by their path (as kubelet's strict
decoding does), checks the types of the fields this kubelet acts on, and returns a plain dict with
kubelet's defaults filled in. Durations keep Go's spelling in the file ("10s", "5m0s") and are
read with `seconds`.
"""

from __future__ import annotations

import re

import yaml

API_VERSION = "kubelet.config.k8s.io/v1beta1"
KIND = "KubeletConfiguration"


class ConfigError(Exception):
    """Bad input in the config file or on the command line; the message names what and where."""


# Every top-level field of KubeletConfiguration v1beta1; those this kubelet acts on have a default.
_ACCEPTED = """
enableServer podLogsDir fileCheckFrequency httpCheckFrequency staticPodURL staticPodURLHeader
address readOnlyPort tlsCipherSuites tlsMinVersion serverTLSBootstrap registryPullQPS registryBurst
imagePullCredentialsVerificationPolicy preloadedImagesVerificationAllowlist eventRecordQPS
eventBurst enableDebuggingHandlers enableContentionProfiling healthzPort healthzBindAddress
oomScoreAdj streamingConnectionIdleTimeout imageMinimumGCAge imageMaximumGCAge
imageGCHighThresholdPercent imageGCLowThresholdPercent volumeStatsAggPeriod kubeletCgroups
systemCgroups cgroupRoot cgroupsPerQOS cgroupDriver cpuManagerPolicy singleProcessOOMKill
cpuManagerPolicyOptions cpuManagerReconcilePeriod memoryManagerPolicy topologyManagerPolicy
topologyManagerScope topologyManagerPolicyOptions qosReserved runtimeRequestTimeout hairpinMode
podCIDR podPidsLimit resolvConf runOnce cpuCFSQuota cpuCFSQuotaPeriod nodeStatusMaxImages
maxOpenFiles contentType kubeAPIQPS kubeAPIBurst serializeImagePulls maxParallelImagePulls
evictionSoft evictionSoftGracePeriod evictionPressureTransitionPeriod evictionMaxPodGracePeriod
evictionMinimumReclaim mergeDefaultEvictionSettings podsPerCore enableControllerAttachDetach
protectKernelDefaults makeIPTablesUtilChains iptablesMasqueradeBit iptablesDropBit featureGates
failSwapOn memorySwap containerLogMaxSize containerLogMaxFiles containerLogMaxWorkers
containerLogMonitorInterval configMapAndSecretChangeDetectionStrategy systemReserved kubeReserved
reservedSystemCPUs showHiddenMetricsForVersion systemReservedCgroup kubeReservedCgroup
enforceNodeAllocatable allowedUnsafeSysctls volumePluginDir providerID kernelMemcgNotification
logging enableSystemLogHandler enableSystemLogQuery shutdownGracePeriod
shutdownGracePeriodCriticalPods shutdownGracePeriodByPodPriority crashLoopBackOff reservedMemory
enableProfilingHandler enableDebugFlagsHandler seccompDefault memoryThrottlingFactor registerNode
tracing localStorageCapacityIsolation imageServiceEndpoint failCgroupV1 userNamespaces
""".split()

DEFAULTS: dict = {
    "staticPodPath": "",
    "syncFrequency": "1m0s",
    "port": 10250,
    "tlsCertFile": "",
    "tlsPrivateKeyFile": "",
    "rotateCertificates": False,
    "authentication": {"x509": {"clientCAFile": ""},
                       "webhook": {"enabled": True, "cacheTTL": "2m0s"},
                       "anonymous": {"enabled": False}},
    "authorization": {"mode": "Webhook",
                      "webhook": {"cacheAuthorizedTTL": "5m0s", "cacheUnauthorizedTTL": "30s"}},
    "clusterDomain": "cluster.local",
    "clusterDNS": [],
    "nodeStatusUpdateFrequency": "10s",
    "nodeStatusReportFrequency": "5m0s",
    "nodeLeaseDurationSeconds": 40,
    "maxPods": 110,
    "evictionHard": {"memory.available": "100Mi", "nodefs.available": "10%",
                     "imagefs.available": "15%", "nodefs.inodesFree": "5%"},
    "registerWithTaints": [],
    "containerRuntimeEndpoint": "",
    "seccompDefault": False,
    "allowedUnsafeSysctls": [],
}

# What each known field must be, for a message naming the field instead of a crash later.
_TYPES: dict[str, tuple[type, ...]] = {
    "staticPodPath": (str,), "port": (int,), "tlsCertFile": (str,), "tlsPrivateKeyFile": (str,),
    "rotateCertificates": (bool,), "clusterDomain": (str,), "clusterDNS": (list,),
    "maxPods": (int,), "evictionHard": (dict,), "registerWithTaints": (list,),
    "nodeLeaseDurationSeconds": (int,), "containerRuntimeEndpoint": (str,),
    "authentication": (dict,), "authorization": (dict,),
    "seccompDefault": (bool,), "allowedUnsafeSysctls": (list,),
    "cgroupRoot": (str,), "cgroupsPerQOS": (bool,), "cgroupDriver": (str,),
    "serverTLSBootstrap": (bool,),
}
_NESTED = {
    "authentication": {"x509": {"clientCAFile"}, "webhook": {"enabled", "cacheTTL"},
                       "anonymous": {"enabled"}},
    "authorization": {"mode": None, "webhook": {"cacheAuthorizedTTL", "cacheUnauthorizedTTL"}},
}
_DURATION_FIELDS = ("syncFrequency", "nodeStatusUpdateFrequency", "nodeStatusReportFrequency")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def seconds(duration: str | int | float, field: str = "duration") -> float:
    """Go's time.Duration text ("1m30s", "500ms") in seconds."""
    if isinstance(duration, (int, float)) and not isinstance(duration, bool):
        return float(duration)
    text = str(duration).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ConfigError(f"{field}: {duration!r} is not a duration; write it as Go does, "
                          "e.g. 10s, 1m0s or 500ms")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _merge(defaults: dict, given: dict) -> dict:
    out = dict(defaults)
    for key, value in given.items():
        out[key] = _merge(defaults[key], value) if isinstance(defaults.get(key), dict) and \
            isinstance(value, dict) and key not in ("evictionHard",) else value
    return out


def check(doc: dict, source: str) -> dict:
    """The configuration with defaults applied; ConfigError names the first bad field."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: the file must hold a {KIND} object (a YAML mapping)")
    if doc.get("kind") != KIND or doc.get("apiVersion") != API_VERSION:
        raise ConfigError(f"{source}: expected kind {KIND} and apiVersion {API_VERSION}, got "
                          f"kind {doc.get('kind')!r} and apiVersion {doc.get('apiVersion')!r}")
    known = set(_ACCEPTED) | set(DEFAULTS) | {"kind", "apiVersion"}
    for key, value in doc.items():
        if key not in known:
            raise ConfigError(f"{source}: unknown field \"{key}\" in {KIND}; check its spelling "
                              f"against {API_VERSION}")
        if key in _TYPES and not isinstance(value, _TYPES[key]) or \
                key in _TYPES and _TYPES[key] == (int,) and isinstance(value, bool):
            kinds = " or ".join(t.__name__ for t in _TYPES[key])
            raise ConfigError(f"{source}: field \"{key}\" must be {kinds}, not {value!r}")
        if key in _NESTED:
            for sub, subvalue in value.items():
                if sub not in _NESTED[key]:
                    raise ConfigError(f"{source}: unknown field \"{key}.{sub}\" in {KIND}")
                allowed = _NESTED[key][sub]
                if allowed is not None:
                    if not isinstance(subvalue, dict):
                        raise ConfigError(f"{source}: field \"{key}.{sub}\" must be a mapping")
                    for leaf in subvalue:
                        if leaf not in allowed:
                            raise ConfigError(f"{source}: unknown field \"{key}.{sub}.{leaf}\" "
                                              f"in {KIND}")
    for key in _DURATION_FIELDS:
        if key in doc:
            seconds(doc[key], f"{source}: field \"{key}\"")
    mode = (doc.get("authorization") or {}).get("mode", "Webhook")
    if mode not in ("Webhook", "AlwaysAllow"):
        raise ConfigError(f"{source}: field \"authorization.mode\" must be Webhook or "
                          f"AlwaysAllow, not {mode!r}")
    return _merge(DEFAULTS, {k: v for k, v in doc.items() if k not in ("kind", "apiVersion")})


def load(path: str | None) -> dict:
    if not path:
        return _merge(DEFAULTS, {})
    try:
        with open(path) as source:
            doc = yaml.safe_load(source)
    except OSError as error:
        raise ConfigError(f"--config {path}: cannot read it ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"--config {path}: not valid YAML ({error})") from None
    return check(doc, path)


def parse_labels(text: str) -> dict[str, str]:
    """--node-labels key=value,key2=value2."""
    out = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--node-labels: {item!r} is not key=value")
        out[key] = value
    return out
