"""Smoke test: the cluster's registry answers `/v2/` to a client certificate from the cluster CA
and refuses a client without one (provisioner.phases.registry runs it)."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

from provisioner.spec import ClusterSpec
from provisioner.verify.checks import CheckResult

CHECK = "registry answers client certificates only"
WAIT_SECONDS = 10.0  # a registry restarted by this run may still be starting


def _get_v2(endpoint: str, context: ssl.SSLContext) -> int:
    """The status of GET /v2/; an OSError when the connection or the handshake fails."""
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(f"https://{endpoint}/v2/", timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except urllib.error.URLError as error:
        raise OSError(str(error.reason)) from error


def registry_checks(spec: ClusterSpec, pki_dir: Path,
                    wait_seconds: float = WAIT_SECONDS) -> list[CheckResult]:
    """One result for the registry's host; none when the spec has no registry."""
    endpoint, host = spec.registry_endpoint, spec.registry_host
    if endpoint is None or host is None:
        return []
    admin = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    admin.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
    anonymous = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            status = _get_v2(endpoint, admin)
            break
        except (OSError, socket.timeout) as error:
            if time.monotonic() >= deadline:
                return [CheckResult(CHECK, host.name, False, f"https://{endpoint}/v2/ with the "
                                    f"admin certificate: {error}")]
            time.sleep(0.5)
    if status != 200:
        return [CheckResult(CHECK, host.name, False,
                            f"https://{endpoint}/v2/ answered {status} to the admin certificate")]
    try:
        refused = _get_v2(endpoint, anonymous)
    except OSError:
        return [CheckResult(CHECK, host.name, True, f"https://{endpoint}/v2/ answers the admin "
                            "certificate and refuses a client without one")]
    return [CheckResult(CHECK, host.name, False, f"https://{endpoint}/v2/ answered {refused} to "
                        "a client without a certificate")]
