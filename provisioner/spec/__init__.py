"""The cluster spec: cerberus schema (data), loader (all errors, each with its field path),
typed model. Everything else imports from here, never from the modules inside.
"""

from provisioner.spec.loader import load_cluster, validate_cluster
from provisioner.spec.model import (
    Artifacts,
    ClusterSpec,
    EtcdSettings,
    Host,
    Networking,
    RegistrySettings,
    SSHSettings,
)
from provisioner.spec.problems import Problem, SpecError

__all__ = [
    "Artifacts",
    "ClusterSpec",
    "EtcdSettings",
    "Host",
    "Networking",
    "Problem",
    "RegistrySettings",
    "SSHSettings",
    "SpecError",
    "load_cluster",
    "validate_cluster",
]
