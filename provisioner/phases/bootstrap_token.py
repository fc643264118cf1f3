"""Phase `bootstrap-token`: a bootstrap token for joining nodes, and the RBAC that lets it work.

As kubeadm's default node token: a Secret `bootstrap-token-<id>` in kube-system that expires
after a day, usable for authentication (joining kubelets authenticate as
`system:bootstrap:<id>` in `system:bootstrappers:kubeadm:default-node-token`) and for signing
`cluster-info`. The token lives in the cluster's local state (0600) and is reused until it is
within an hour of expiring. The bindings let bootstrappers file CSRs and have them approved
(`nodeclient`), and let nodes renew their own certificates (`selfnodeclient`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import string

from provisioner.phases.apiobjects import plan_objects
from provisioner.phases.context import ClusterContext
from provisioner.pki.certs import write_private_file
from provisioner.workflow import Phase, Plan

TOKEN_FILE = "bootstrap-token.json"   # in the local state's pki directory
TOKEN_TTL = dt.timedelta(hours=24)
RENEW_BEFORE = dt.timedelta(hours=1)
NODE_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
_ALPHABET = string.ascii_lowercase + string.digits


class Token:
    def __init__(self, token_id: str, secret: str, expires: dt.datetime):
        self.id, self.secret, self.expires = token_id, secret, expires

    @property
    def value(self) -> str:
        return f"{self.id}.{self.secret}"


def current_token(ctx: ClusterContext, now: dt.datetime | None = None) -> Token:
    """The cluster's join token: the kept one, or a new one when it is missing or expiring."""
    now = now or dt.datetime.now(dt.timezone.utc)
    path = ctx.state.pki_dir / TOKEN_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        token = Token(saved["id"], saved["secret"], dt.datetime.fromisoformat(saved["expires"]))
        if token.expires - now > RENEW_BEFORE:
            return token
    token = Token("".join(secrets.choice(_ALPHABET) for _ in range(6)),
                  "".join(secrets.choice(_ALPHABET) for _ in range(16)),
                  (now + TOKEN_TTL).replace(microsecond=0))
    write_private_file(path, json.dumps({"id": token.id, "secret": token.secret,
                                         "expires": token.expires.isoformat()}).encode())
    return token


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _binding(name: str, role: str, kind: str, subject: str) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind,
                          "name": subject}]}


def _csr_role(name: str, subresource: str) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [{"apiGroups": ["certificates.k8s.io"],
                       "resources": [f"certificatesigningrequests/{subresource}"],
                       "verbs": ["create"]}]}


def objects(ctx: ClusterContext) -> list[dict]:
    token = current_token(ctx)
    expiration = token.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    nodeclient = "system:certificates.k8s.io:certificatesigningrequests:nodeclient"
    selfnodeclient = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
    return [
        {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
         "metadata": {"name": f"bootstrap-token-{token.id}", "namespace": "kube-system"},
         "data": {"token-id": _b64(token.id), "token-secret": _b64(token.secret),
                  "expiration": _b64(expiration),
                  "description": _b64("the default node join token, made by provisioner"),
                  "usage-bootstrap-authentication": _b64("true"),
                  "usage-bootstrap-signing": _b64("true"),
                  "auth-extra-groups": _b64(NODE_TOKEN_GROUP)}},
        _csr_role(nodeclient, "nodeclient"),
        _csr_role(selfnodeclient, "selfnodeclient"),
        _binding("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", "Group",
                 NODE_TOKEN_GROUP),
        _binding("kubeadm:node-autoapprove-bootstrap", nodeclient, "Group", NODE_TOKEN_GROUP),
        _binding("kubeadm:node-autoapprove-certificate-rotation", selfnodeclient, "Group",
                 "system:nodes"),
    ]


def plan_token(ctx: ClusterContext, plan: Plan) -> None:
    plan_objects(ctx, plan, lambda: objects(ctx), "the bootstrap token and its RBAC")


PHASE = Phase("bootstrap-token", "making a bootstrap token for joining nodes", plan_token,
              run_if=lambda ctx: bool(ctx.spec.control_plane_hosts), hosts=lambda ctx: [])
