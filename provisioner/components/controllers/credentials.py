"""--use-service-account-credentials: each controller acts as its own ServiceAccount in kube-system,
as upstream (so RBAC grants each only what it needs, and audit logs name the controller).
Missing `system:controller:<account>` roles and bindings are created first (controllerroles.py).

The manager's own identity creates the account if missing and asks for a bound token through
serviceaccounts/token (TokenRequest, one hour); the controller's client sends it as a bearer
token, renewed before it expires. Account names are upstream's (`deployment-controller`,
`generic-garbage-collector`, ...).
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from provisioner.components.api.client import ApiStatusError, Client
from provisioner.components.api.kubeconfig import KubeConfig

from . import controllerroles
from .rootca import kubeconfig_ca

log = logging.getLogger(__name__)
NAMESPACE = "kube-system"
TOKEN_SECONDS = 3600
RENEW_AFTER = 0.75 * TOKEN_SECONDS

ACCOUNTS = {"garbagecollector": "generic-garbage-collector", "podgc": "pod-garbage-collector",
            "endpoint": "endpoint-controller", "daemonset": "daemon-set-controller",
            "nodelifecycle": "node-controller", "nodeipam": "node-controller",
            "taint-eviction-controller": "node-controller", "csrapproving": "certificate-controller",
            "csrsigning": "certificate-controller", "bootstrapsigner": "bootstrap-signer",
            "tokencleaner": "token-cleaner", "root-ca-cert-publisher": "root-ca-cert-publisher",
            "serviceaccount": "service-account-controller", "replicationcontroller": "replication-controller",
            "ttl-after-finished": "ttl-after-finished-controller", "serviceaccount-token": "tokens-controller",
            "pvc-protection": "pvc-protection-controller", "pv-protection": "pv-protection-controller",
            "endpointslicemirroring": "endpointslicemirroring-controller",
            "clusterrole-aggregation": "clusterrole-aggregation-controller",
            "ephemeral-volume": "ephemeral-volume-controller", "persistentvolume-binder": "persistent-volume-binder",
            "ttl": "ttl-controller", "horizontal-pod-autoscaler": "horizontal-pod-autoscaler"}


def account_for(controller: str) -> str:
    return ACCOUNTS.get(controller, f"{controller}-controller")


class ServiceAccountClients:
    """controller name -> a Client authenticated as its ServiceAccount (one per account)."""

    def __init__(self, root: Client, kubeconfig_path: str) -> None:
        self.root = root
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ca = kubeconfig_ca(kubeconfig_path)
        if ca:
            ctx.load_verify_locations(cadata=ca)
        self.ssl = ctx
        self.clients: dict[str, Client] = {}
        self._renewer: asyncio.Task | None = None

    async def _create_absent(self, group: str, plural: str, body: dict, ns: str | None = None) -> None:
        try:
            await self.root.create(group, "v1", plural, body, ns)
        except ApiStatusError as exc:
            if exc.code != 409:  # there already: the API server's or an operator's, kept as it is
                raise

    async def _token(self, account: str) -> str:
        await self._create_absent("", "serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                                          "metadata": {"name": account}}, NAMESPACE)
        rbac = "rbac.authorization.k8s.io"
        await self._create_absent(rbac, "clusterroles", controllerroles.role(account))
        await self._create_absent(rbac, "clusterrolebindings", controllerroles.binding(account, NAMESPACE))
        review = await self.root.create("", "v1", f"serviceaccounts/{account}/token", {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": TOKEN_SECONDS}}, NAMESPACE)
        return review["status"]["token"]

    async def prepare(self, controllers: list[str]) -> None:
        """Accounts and tokens for these controllers (before they start)."""
        for c in controllers:
            account = account_for(c)
            if account not in self.clients:
                token = await self._token(account)
                self.clients[account] = Client(KubeConfig(self.root.config.server, self.ssl, token),
                                               user_agent=f"kube-controller-manager/{account}")
        if self._renewer is None:
            self._renewer = asyncio.ensure_future(self._renew())

    def __call__(self, controller: str) -> Client:
        return self.clients.get(account_for(controller), self.root)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_AFTER)
            for account, client in self.clients.items():
                try:
                    client.session.headers["Authorization"] = f"Bearer {await self._token(account)}"
                except Exception as exc:  # keep the old token; it is good for another quarter hour
                    log.warning("token for %s not renewed: %s", account, exc)

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        for client in self.clients.values():
            await client.close()
