"""kubelet: the serving certificate from the cluster CA, by CSR (serverTLSBootstrap: true).

The kubelet files a CertificateSigningRequest for signer kubernetes.io/kubelet-serving (CN
system:node:<name>, O system:nodes, subject alternative names: the node's host name and
addresses, usages digital signature and server auth), waits until someone approves it (upstream
never approves these automatically: `kubectl certificate approve`, or the provisioner's join step)
and the controller manager signs it, keeps the pair in <cert-dir>/kubelet-server-current.pem and
loads it into the live TLS context of port 10250: new connections get it, open ones are not cut.
Until then the server keeps its self-signed certificate. It asks again at a random point between
70% and 90% of the certificate's life (as kubelet's certificate manager does), and at start when
the stored certificate has expired or no longer names the node's addresses.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import os
import random
import ssl

from cryptography import x509

from ..api.client import ApiStatusError, Client
from .bootstrap import lifetime, request_certificate, store_pair
from .config import ConfigError

log = logging.getLogger("kubelet.serving")
SIGNER = "kubernetes.io/kubelet-serving"
USAGES = ("digital signature", "server auth")      # an ECDSA key: no key encipherment
CURRENT = "kubelet-server-current.pem"
RETRY_SECONDS, RETRY_MAX_SECONDS = 60, 3600    # after a denial or failure, doubling


def subject_alt_names(hostname: str, addresses: list[str]) -> list[x509.GeneralName]:
    """DNS names for the host names, IP addresses for the addresses, each once, in order."""
    names: list[x509.GeneralName] = []
    for value in [hostname, *addresses]:
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(value))
        except ValueError:
            name = x509.DNSName(value)
        if value and name not in names:
            names.append(name)
    return names


def renew_at(not_before: dt.datetime, not_after: dt.datetime, jitter: float) -> dt.datetime:
    """When to ask for the next certificate: at 70% of the life plus up to 20% (`jitter` in
    [0, 1)), so a fleet of nodes does not renew at one moment."""
    return not_before + (not_after - not_before) * (0.7 + 0.2 * jitter)


def usable(path: str, sans: list[x509.GeneralName], now: dt.datetime) -> bool:
    """Whether the stored pair is still valid and names every wanted SAN."""
    try:
        with open(path, "rb") as source:
            cert = x509.load_pem_x509_certificate(source.read())
    except (OSError, ValueError):
        return False
    try:
        held = list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        held = []
    return cert.not_valid_after_utc > now and all(name in held for name in sans)


def current_pair(cert_dir: str, hostname: str, addresses: list[str]) -> str | None:
    """The stored serving pair's path when it can be served now, else None."""
    path = os.path.join(cert_dir, CURRENT)
    now = dt.datetime.now(dt.timezone.utc)
    return path if usable(path, subject_alt_names(hostname, addresses), now) else None


async def serving_loop(client: Client, node_name: str, hostname: str, addresses: list[str],
                       cert_dir: str, tls: ssl.SSLContext) -> None:
    """Obtain the serving certificate, load it into `tls`, and renew it before it expires."""
    sans = subject_alt_names(hostname, addresses)
    path = os.path.join(cert_dir, CURRENT)
    jitter = random.random()           # drawn again for each new certificate
    retry = RETRY_SECONDS
    while True:
        now = dt.datetime.now(dt.timezone.utc)
        if usable(path, sans, now):
            with open(path, "rb") as source:
                start, end = lifetime(source.read())
            wait = (renew_at(start, end, jitter) - now).total_seconds()
            if wait > 0:
                await asyncio.sleep(min(wait, 3600))
                continue
        try:
            key_pem, cert_pem = await request_certificate(
                client, node_name, signer=SIGNER, usages=USAGES, sans=sans,
                generate_name="csr-")
            stored = store_pair(cert_dir, key_pem, cert_pem, kind="server")
            tls.load_cert_chain(stored)
            jitter, retry = random.random(), RETRY_SECONDS
            log.info("serving with the certificate the cluster CA signed (%s)", stored)
        except (ApiStatusError, ConfigError, OSError, ssl.SSLError) as error:
            # a denied request is not filed again every minute
            log.warning("serving certificate not obtained (retry in %ds): %s", retry, error)
            await asyncio.sleep(retry)
            retry = min(retry * 2, RETRY_MAX_SECONDS)
