"""The API aggregation layer: APIServices with spec.service are proxied to their backend.

A real etcd + API server (started with the front-proxy flags) and a small HTTPS backend on
loopback that echoes what it was sent; real kubectl reads through the aggregator. The header
rules themselves are also checked on aggregator.proxy_headers directly.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
import threading
import time

import pytest
from aiohttp import web
from multidict import CIMultiDict

from provisioner.components.apiserver.aggregator import RequestHeaderNames, proxy_headers
from provisioner.devmetrics import front_proxy_args
from provisioner.pki import certs
from tests.conftest import dev_cluster, free_port

from .conftest import KUBECTL

GROUP = "echo.example.com"


# -- the headers a backend receives (no server) --------------------------------------------------
HEADER_CASES = [
    ("the user and every group are named",
     {"Accept": "application/json"}, ("alice", ["dev", "system:authenticated"], {}),
     [("Accept", "application/json"), ("X-Remote-User", "alice"), ("X-Remote-Group", "dev"),
      ("X-Remote-Group", "system:authenticated")]),
    ("the caller's credentials and identity claims never pass",
     {"Authorization": "Bearer secret", "X-Remote-User": "root", "x-remote-group": "system:masters",
      "X-Remote-Extra-Scopes": "all", "Impersonate-User": "root", "Impersonate-Extra-Foo": "x"},
     ("bob", [], {}), [("X-Remote-User", "bob")]),
    ("extra keys are lower-cased and escaped, one header per value",
     {}, ("carol", [], {"Example.com/Scopes": ["a", "b"], "with space": ["c"]}),
     [("X-Remote-User", "carol"), ("X-Remote-Extra-example.com%2Fscopes", "a"),
      ("X-Remote-Extra-example.com%2Fscopes", "b"), ("X-Remote-Extra-with%20space", "c")]),
    ("hop-by-hop headers are dropped", {"Connection": "keep-alive", "Host": "x", "Content-Length": "3"},
     ("dave", [], {}), [("X-Remote-User", "dave")]),
]


@pytest.mark.parametrize("incoming, user, expected", [c[1:] for c in HEADER_CASES],
                         ids=[c[0] for c in HEADER_CASES])
def test_proxy_headers(incoming, user, expected):
    assert proxy_headers(CIMultiDict(incoming), *user) == expected


def test_proxy_headers_use_the_configured_names():
    names = RequestHeaderNames(("X-User", "X-Remote-User"), ("X-Groups",), ("X-Extra-",))
    out = proxy_headers(CIMultiDict({"X-Remote-User": "forged", "X-Extra-Foo": "forged"}), "erin", ["g"],
                        {"k": ["v"]}, names)
    assert out == [("X-User", "erin"), ("X-Groups", "g"), ("X-Extra-k", "v")]


# -- a real API server and an echoing backend ------------------------------------------------------
class Backend:
    """HTTPS on loopback, client certificates from the front-proxy CA required, echoing requests."""

    def __init__(self, directory, front_proxy_ca):
        self.ca = certs.new_ca("echo-ca")
        certs.issue(self.ca, "echo", dns_names=("echo.default.svc", "echo-slice.default.svc"), server=True).save(directory, "echo")
        self.port = free_port()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(directory / "echo.crt"), str(directory / "echo.key"))
        ctx.load_verify_locations(str(front_proxy_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.ssl = ctx
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()

    async def discovery(self, request):
        group = request.match_info["group"]
        if not group.endswith(".example.com") or group.startswith("insecure."):
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/v1",
                                  "resources": [{"name": "echoes", "singularName": "echo", "namespaced": True,
                                                 "kind": "Echo", "verbs": ["get", "list"]}]})

    async def echo(self, request):
        peer = request.transport.get_extra_info("peercert")
        cn = [v for rdn in peer["subject"] for k, v in rdn if k == "commonName"]
        return web.json_response({"kind": "EchoList", "apiVersion": f"{GROUP}/v1", "metadata": {}, "items": [],
                                  "path": request.path_qs, "peer": cn,
                                  "headers": [[k, v] for k, v in request.headers.items()]})

    def run(self):
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/apis/{group}/v1", self.discovery)
        app.router.add_get("/apis/{group}/v1/{tail:.*}", self.echo)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port, ssl_context=self.ssl).start())
        self.started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def start(self):
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        self.started.wait(10)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def aggregated(tmp_path_factory):
    root = tmp_path_factory.mktemp("aggregation")
    cluster = dev_cluster(root)
    cluster.extra_args += front_proxy_args(cluster.pki)
    cluster.start()
    backend = Backend(root, cluster.pki / "front-proxy-ca.crt")
    backend.start()
    yield cluster, backend
    backend.stop()
    cluster.stop()


def kubectl(cluster, *args, input=None, kubeconfig=None):
    return subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig or cluster.kubeconfig), *args],
                          capture_output=True, text=True, input=input, timeout=60)


def apply(cluster, *objects):
    result = kubectl(cluster, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                    "items": list(objects)}))
    assert result.returncode == 0, result.stderr


def api_service(name, group, service, ca_pem=None, insecure=False):
    spec = {"group": group, "version": "v1", "groupPriorityMinimum": 1000, "versionPriority": 15,
            "service": {"namespace": "default", "name": service, "port": 443}}
    if ca_pem:
        spec["caBundle"] = base64.b64encode(ca_pem).decode()
    if insecure:
        spec["insecureSkipTLSVerify"] = True
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": name},
            "spec": spec}


def service(name, port, endpoints=True):
    objs = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
             "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]}}]
    if endpoints:
        objs.append({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": "default"},
                     "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": port}]}]})
    return objs


def endpoint_slice(name, port, ready):
    # a slice as the EndpointSlice controller writes it (an address that is not 127.0.0.1 when
    # not ready, so a wrong choice could not pass by accident)
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{name}-abcde", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": name}},
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["127.0.0.1" if ready else "127.0.0.2"],
                           "conditions": {"ready": ready}}]}


def condition_of(cluster, name):
    out = kubectl(cluster, "get", "apiservice", name, "-o", "json")
    conditions = (json.loads(out.stdout).get("status") or {}).get("conditions") or [] if out.returncode == 0 else []
    return next((c for c in conditions if c["type"] == "Available"), None)


def wait_condition(cluster, name, status, reason, timeout=30.0):
    """The APIService's Available condition once it says status/reason (polled with a deadline)."""
    deadline = time.monotonic() + timeout
    condition = None
    while time.monotonic() < deadline:
        condition = condition_of(cluster, name)
        if condition and (condition["status"], condition["reason"]) == (status, reason):
            return condition
        time.sleep(0.3)
    raise AssertionError(f"{name}: wanted {status}/{reason}, last {condition}")


@pytest.fixture(scope="module")
def echo_service(aggregated):
    cluster, backend = aggregated
    apply(cluster, *service("echo", backend.port),
          api_service(f"v1.{GROUP}", GROUP, "echo", ca_pem=backend.ca.cert_pem()))
    wait_condition(cluster, f"v1.{GROUP}", "True", "Passed")
    return cluster, backend


def test_requests_reach_the_backend_as_the_authenticated_user(echo_service):
    cluster, _ = echo_service
    out = kubectl(cluster, "get", "--raw", f"/apis/{GROUP}/v1/namespaces/default/echoes?limit=5")
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    headers = [(k.lower(), v) for k, v in seen["headers"]]
    assert seen["path"] == f"/apis/{GROUP}/v1/namespaces/default/echoes?limit=5"
    assert seen["peer"] == ["front-proxy-client"]  # the API server's front-proxy certificate
    assert ("x-remote-user", "kubernetes-admin") in headers
    assert {v for k, v in headers if k == "x-remote-group"} >= {"system:masters", "system:authenticated"}
    assert not [k for k, _ in headers if k == "authorization"]


def test_kubectl_discovers_the_aggregated_group(echo_service):
    cluster, _ = echo_service
    resources = kubectl(cluster, "api-resources", "--api-group", GROUP)
    assert resources.returncode == 0, resources.stderr
    assert "echoes" in resources.stdout and "Echo" in resources.stdout
    groups = json.loads(kubectl(cluster, "get", "--raw", "/apis").stdout)
    assert GROUP in [g["name"] for g in groups["groups"]]
    group = json.loads(kubectl(cluster, "get", "--raw", f"/apis/{GROUP}").stdout)
    assert group["preferredVersion"]["groupVersion"] == f"{GROUP}/v1"
    listed = kubectl(cluster, "get", "echoes", "-n", "default")
    assert listed.returncode == 0 and "No resources found" in listed.stderr, listed.stderr


def test_the_api_server_authorizes_before_proxying(echo_service):
    cluster, _ = echo_service
    nobody = cluster.user_kubeconfig("aggregation-nobody")
    out = kubectl(cluster, "get", "--raw", f"/apis/{GROUP}/v1/namespaces/default/echoes", kubeconfig=nobody)
    assert out.returncode != 0
    assert 'User "aggregation-nobody" cannot list resource "echoes" in API group "echo.example.com"' in out.stderr


UNAVAILABLE = [
    # (what, service objects, APIService extras, reason, message fragment)
    ("missing service", [], {}, "ServiceNotFound", 'service/{svc} in "default" is not present'),
    ("no endpoints", "no-endpoints", {}, "EndpointsNotFound", "cannot find endpoints for service/{svc}"),
    ("wrong CA", "wrong-ca", {}, "FailedDiscoveryCheck", "failing or missing response from https://127.0.0.1:"),
    ("endpoints without the port name", "wrong-port-name", {}, "MissingEndpoints",
     'endpoints for service/{svc} in "default" have no addresses with port name "https"'),
    ("only endpoint slices not ready", "unready-slice", {}, "MissingEndpoints",
     'endpoints for service/{svc} in "default" have no addresses with port name "https"'),
]


@pytest.mark.parametrize("what, objects, extra, reason, message", UNAVAILABLE, ids=[c[0] for c in UNAVAILABLE])
def test_unavailable_api_services_say_why_and_other_groups_keep_working(aggregated, what, objects, extra,
                                                                         reason, message):
    cluster, backend = aggregated
    svc = "gone-" + what.lower().replace(" ", "-")
    group = f"{svc}.example.com"
    if objects == "no-endpoints":
        apply(cluster, *service(svc, backend.port, endpoints=False))
    elif objects == "wrong-ca":
        apply(cluster, *service(svc, backend.port))
    elif objects == "wrong-port-name":
        svc_obj, endpoints = service(svc, backend.port)
        endpoints["subsets"][0]["ports"][0]["name"] = "metrics"
        apply(cluster, svc_obj, endpoints)
    elif objects == "unready-slice":
        apply(cluster, service(svc, backend.port, endpoints=False)[0], endpoint_slice(svc, backend.port, ready=False))
    ca = backend.ca.cert_pem() if objects in ("wrong-port-name", "unready-slice") else \
        certs.new_ca("not-the-backend-ca").cert_pem()
    apply(cluster, api_service(f"v1.{group}", group, svc, ca_pem=ca))
    condition = wait_condition(cluster, f"v1.{group}", "False", reason)
    assert message.format(svc=svc) in condition["message"]
    listed = kubectl(cluster, "get", "apiservices")
    assert f"False ({reason})" in listed.stdout
    pods = kubectl(cluster, "get", "pods", "-A")  # discovery without the broken group: no errors
    assert pods.returncode == 0 and pods.stderr.strip() in ("", "No resources found"), pods.stderr
    raw = kubectl(cluster, "get", "--raw", f"/apis/{group}/v1/things")
    assert raw.returncode != 0 and "ServiceUnavailable" in raw.stderr
    assert group not in kubectl(cluster, "get", "--raw", "/apis").stdout


def test_ready_endpoint_slices_lead_to_the_backend(aggregated):
    cluster, backend = aggregated
    apply(cluster, service("echo-slice", backend.port, endpoints=False)[0],
          endpoint_slice("echo-slice", backend.port, ready=True),
          api_service("v1.slice.example.com", "slice.example.com", "echo-slice", ca_pem=backend.ca.cert_pem()))
    wait_condition(cluster, "v1.slice.example.com", "True", "Passed")
    out = kubectl(cluster, "get", "--raw", "/apis/slice.example.com/v1/echoes")
    assert out.returncode == 0 and json.loads(out.stdout)["path"] == "/apis/slice.example.com/v1/echoes"


def test_insecure_skip_tls_verify_reaches_a_backend_without_a_bundle(aggregated):
    cluster, backend = aggregated
    apply(cluster, *service("echo-insecure", backend.port))
    # the backend serves the same group under another name; only availability is looked at
    apply(cluster, api_service("v1.insecure.example.com", "insecure.example.com", "echo-insecure", insecure=True))
    condition = wait_condition(cluster, "v1.insecure.example.com", "False", "FailedDiscoveryCheck")
    assert "bad status" in condition["message"] and ": 404" in condition["message"]  # TLS passed, path unknown
