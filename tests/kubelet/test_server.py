"""The kubelet's HTTPS server on its port: client certificates and bearer tokens, authorized
with SubjectAccessReview; container logs with kubelet's options; exec over WebSocket."""

from __future__ import annotations

import asyncio
import json
import ssl

import aiohttp
import pytest
from kubernetes import client as k8s

from .conftest import pod_manifest, prepare_namespace, wait_for


def tls(cluster, cert=None, key=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE          # the kubelet's own self-signed serving certificate
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def admin(cluster) -> ssl.SSLContext:
    return tls(cluster, cluster.pki / "admin.crt", cluster.pki / "admin.key")


async def fetch(kubelet, ctx, path, headers=None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"https://127.0.0.1:{kubelet.port}{path}", ssl=ctx,
                               headers=headers or {}) as response:
            return response.status, await response.text()


def get(kubelet, ctx, path, headers=None):
    return asyncio.run(fetch(kubelet, ctx, path, headers))


@pytest.fixture(scope="module")
def chatty(api, kubelet, cluster):
    """A pod that wrote three lines and crashed once (a previous instance to read)."""
    namespace = "kubelet-server-tests"
    prepare_namespace(api, cluster, namespace)
    script = ("echo one; echo two; echo three >&2; "
              "if [ -f /data/second ]; then exec sleep 3600; fi; touch /data/second; exit 1")
    api.create_namespaced_pod(namespace, pod_manifest("chatty", kubelet.node, [
        {"name": "main", "image": "busybox:latest", "command": ["sh", "-c", script],
         "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        volumes=[{"name": "data", "emptyDir": {}}]))
    wait_for(lambda: (s := api.read_namespaced_pod("chatty", namespace).status
                      .container_statuses) and s[0].restart_count == 1 and s[0].state.running,
             60, what="chatty restarted once and running")
    # running says its second instance started, not that it has written its lines (the last one
    # on stderr)
    wait_for(lambda: "three" in get(kubelet, admin(cluster), f"/containerLogs/{namespace}/chatty/main")[1],
             30, what="chatty's second instance done writing")
    yield namespace
    api.delete_namespace(namespace)


def test_anonymous_requests_are_refused(kubelet, cluster):
    assert get(kubelet, tls(cluster), "/healthz")[0] == 401


def test_a_user_without_nodes_proxy_is_forbidden(kubelet, cluster):
    cert, key = cluster.issue_user("nobody-special")
    status, text = get(kubelet, tls(cluster, cert, key), "/pods")
    assert status == 403
    assert "user=nobody-special" in text and "subresource=proxy" in text
    status, text = get(kubelet, tls(cluster, cert, key), "/stats/summary")
    assert status == 403 and "subresource=stats" in text


def test_a_bearer_token_is_checked_with_token_review(kubelet, cluster, api):
    api.create_namespaced_service_account("default", k8s.V1ServiceAccount(
        metadata=k8s.V1ObjectMeta(name="kubelet-reader")))
    token = api.create_namespaced_service_account_token(
        "kubelet-reader", "default", k8s.AuthenticationV1TokenRequest(
            spec=k8s.V1TokenRequestSpec(audiences=[]))).status.token
    status, text = get(kubelet, tls(cluster), "/healthz", {"Authorization": f"Bearer {token}"})
    assert status == 403 and "user=system:serviceaccount:default:kubelet-reader" in text
    assert get(kubelet, tls(cluster), "/healthz", {"Authorization": "Bearer not-a-token"})[0] \
        == 401


def test_healthz_and_pods_for_an_authorized_client(kubelet, cluster, chatty):
    assert get(kubelet, admin(cluster), "/healthz") == (200, "ok")
    status, text = get(kubelet, admin(cluster), "/pods")
    assert status == 200
    names = {item["metadata"]["name"] for item in json.loads(text)["items"]}
    assert "chatty" in names


@pytest.mark.parametrize("query, expected", [
    ("", ["one", "two", "three"]),
    ("?tailLines=1", ["three"]),
    ("?previous=true", ["one", "two", "three"]),
    ("?limitBytes=6", ["one", "tw"]),
])
def test_container_logs(kubelet, cluster, chatty, query, expected):
    status, text = get(kubelet, admin(cluster), f"/containerLogs/{chatty}/chatty/main{query}")
    assert status == 200
    assert text.splitlines() == expected


def test_container_logs_with_timestamps_and_since(kubelet, cluster, chatty):
    status, text = get(kubelet, admin(cluster),
                       f"/containerLogs/{chatty}/chatty/main?timestamps=true")
    first = text.splitlines()[0]
    stamp, _, line = first.partition(" ")
    assert line == "one" and stamp.startswith("20") and stamp.endswith("Z")
    status, text = get(kubelet, admin(cluster),
                       f"/containerLogs/{chatty}/chatty/main?sinceSeconds=3600")
    assert text.splitlines() == ["one", "two", "three"]
    status, text = get(kubelet, admin(cluster), f"/containerLogs/{chatty}/nope/main")
    assert status == 404 and 'pod "nope"' in text


async def exec_ws(kubelet, cluster, path, protocol):
    frames = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"wss://127.0.0.1:{kubelet.port}{path}",
                                      ssl=admin(cluster), protocols=(protocol,)) as ws:
            assert ws.protocol == protocol
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY:
                    frames.append((message.data[0], message.data[1:]))
    return frames


@pytest.mark.parametrize("protocol", ["v5.channel.k8s.io", "v4.channel.k8s.io"])
def test_exec_over_websocket(kubelet, cluster, chatty, protocol):
    path = (f"/exec/{chatty}/chatty/main?command=sh&command=-c&command=echo+out%3B+echo+err+"
            f">%262%3B+exit+4&stdout=1&stderr=1")
    frames = asyncio.run(exec_ws(kubelet, cluster, path, protocol))
    stdout = b"".join(data for channel, data in frames if channel == 1)
    stderr = b"".join(data for channel, data in frames if channel == 2)
    [error] = [json.loads(data) for channel, data in frames if channel == 3]
    assert (stdout, stderr) == (b"out\n", b"err\n")
    assert error["status"] == "Failure" and error["reason"] == "NonZeroExitCode"
    assert error["details"]["causes"] == [{"reason": "ExitCode", "message": "4"}]


@pytest.fixture(scope="module")
def web_pod(api, kubelet, chatty):
    api.create_namespaced_pod(chatty, pod_manifest("web", kubelet.node, [
        {"name": "main", "image": "busybox:latest",
         "command": ["sh", "-c", "mkdir -p /www && echo forwarded > /www/index.html && "
                                 "exec httpd -f -p 8080 -h /www"],
         "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]))
    wait_for(lambda: (s := api.read_namespaced_pod("web", chatty).status.container_statuses)
             and s[0].ready, 60, what="web ready")
    return "web"


async def forward(kubelet, cluster, path) -> tuple[list, bytes]:
    headers, body = [], b""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"wss://127.0.0.1:{kubelet.port}{path}",
                                      ssl=admin(cluster), protocols=("v4.channel.k8s.io",)) as ws:
            for _ in range(2):
                message = await ws.receive()
                headers.append(message.data)
            await ws.send_bytes(b"\x00GET /index.html HTTP/1.0\r\n\r\n")
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY and message.data[0] == 0:
                    body += message.data[1:]
    return headers, body


def test_port_forward_over_websocket(kubelet, cluster, chatty, web_pod):
    headers, body = asyncio.run(forward(kubelet, cluster,
                                        f"/portForward/{chatty}/{web_pod}?ports=8080"))
    assert headers == [b"\x00" + (8080).to_bytes(2, "little"),
                       b"\x01" + (8080).to_bytes(2, "little")]
    assert body.startswith(b"HTTP/1.1 200 OK") and body.endswith(b"forwarded\n")


def test_python_client_port_forward_through_the_api_server(api, chatty, web_pod):
    from kubernetes.stream import portforward

    forwarded = portforward(api.connect_get_namespaced_pod_portforward, web_pod, chatty,
                            ports="8080")
    sock = forwarded.socket(8080)
    sock.setblocking(True)
    sock.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
    reply = b""
    while chunk := sock.recv(4096):
        reply += chunk
    sock.close()
    assert reply.startswith(b"HTTP/1.1 200 OK") and reply.endswith(b"forwarded\n")
    assert forwarded.error(8080) is None


def test_metrics_and_stats(kubelet, cluster, chatty):
    def samples() -> dict[str, float]:
        status, text = get(kubelet, admin(cluster), "/metrics")
        assert status == 200
        assert f'kubelet_node_name{{node="{kubelet.node}"}} 1.0' in text
        return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
                if line and not line.startswith("#")}

    # the gauges are counted at each relist (every second, as kubelet's PLEG): chatty's
    # restarted container may not be in the last one yet
    found = wait_for(lambda: (now := samples())[
        'kubelet_running_containers{container_state="running"}'] >= 1 and now, 30,
        what="a running container counted")
    assert found["kubelet_running_pods"] >= 1
    assert found["kubelet_pod_start_duration_seconds_count"] >= 1
    status, text = get(kubelet, admin(cluster), "/stats/summary")
    summary = json.loads(text)
    assert summary["node"]["nodeName"] == kubelet.node
    assert summary["node"]["memory"]["availableBytes"] > 0
    assert "chatty" in {pod["podRef"]["name"] for pod in summary["pods"]}


async def follow_lines(kubelet, cluster, path, wanted: int) -> list[str]:
    lines: list[str] = []
    async with aiohttp.ClientSession() as session:
        async with session.get(f"https://127.0.0.1:{kubelet.port}{path}", ssl=admin(cluster),
                               timeout=aiohttp.ClientTimeout(total=60)) as response:
            async for line in response.content:
                lines.append(line.decode().strip())
                if len(lines) >= wanted:
                    break
    return lines


def test_container_logs_follow_streams_as_lines_are_written(api, kubelet, cluster, chatty):
    api.create_namespaced_pod(chatty, pod_manifest("ticker", kubelet.node, [
        {"name": "main", "image": "busybox:latest", "command": [
            "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done"]}]))
    wait_for(lambda: api.read_namespaced_pod("ticker", chatty).status.phase == "Running", 60,
             what="ticker running")
    lines = asyncio.run(follow_lines(kubelet, cluster,
                                     f"/containerLogs/{chatty}/ticker/main?follow=true", 8))
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers == list(range(numbers[0], numbers[0] + 8))


def test_attach_without_a_websocket_is_refused_clearly(kubelet, cluster, chatty):
    code, text = get(kubelet, admin(cluster), f"/attach/{chatty}/chatty/main?stdout=1")
    assert code == 400 and "attach needs a WebSocket upgrade" in text
