"""Smoke tests that prove a cluster works, run from the operator machine against the cluster."""

from provisioner.verify.checks import CheckResult
from provisioner.verify.etcd import etcd_checks

__all__ = ["CheckResult", "etcd_checks"]
