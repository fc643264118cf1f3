"""kubelet: liveness, readiness and startup probes (exec, httpGet, tcpSocket, grpc) with kubelet's
timing.

A ProbeState per container instance and probe kind counts consecutive successes and failures;
a probe runs when initialDelaySeconds has passed since the container started and periodSeconds
since its last run, and its result flips after successThreshold / failureThreshold in a row.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

DEFAULTS = {"initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1,
            "successThreshold": 1, "failureThreshold": 3}


@dataclass
class ProbeState:
    result: bool | None = None      # None: no verdict yet
    successes: int = 0
    failures: int = 0
    last_run: float = 0.0
    last_message: str = ""


def timing(probe: dict) -> dict:
    return {key: probe.get(key, default) or default if key != "initialDelaySeconds"
            else probe.get(key, 0) for key, default in DEFAULTS.items()}


def due(probe: dict, state: ProbeState, started_monotonic: float) -> bool:
    t = timing(probe)
    now = time.monotonic()
    if now - started_monotonic < t["initialDelaySeconds"]:
        return False
    return state.last_run == 0 or now - state.last_run >= t["periodSeconds"]


def resolve_port(port, container: dict) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for item in container.get("ports") or []:
        if item.get("name") == port:
            return int(item["containerPort"])
    raise ValueError(f"port {port!r} is not a named port of container {container['name']}")


async def run(probe: dict, container: dict, pod_ip: str, exec_fn) -> tuple[bool, str]:
    """(success, message) of one probe run; exec_fn(cmd, timeout) -> (exit code, output)."""
    timeout = timing(probe)["timeoutSeconds"]
    try:
        if "exec" in probe:
            code, output = await asyncio.wait_for(exec_fn(probe["exec"]["command"], timeout),
                                                  timeout + 1)
            return code == 0, output.decode(errors="replace")[-1024:]
        if "httpGet" in probe:
            spec = probe["httpGet"]
            host = spec.get("host") or pod_ip
            port = resolve_port(spec["port"], container)
            scheme = (spec.get("scheme") or "HTTP").lower()
            headers = {h["name"]: h["value"] for h in spec.get("httpHeaders") or []}
            headers.setdefault("User-Agent", "kube-probe/1.37")
            url = f"{scheme}://{host}:{port}{spec.get('path') or '/'}"
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
                async with s.get(url, headers=headers, ssl=False, allow_redirects=True) as resp:
                    ok = 200 <= resp.status < 400
                    return ok, f"HTTP probe failed with statuscode: {resp.status}" if not ok else ""
        if "tcpSocket" in probe:
            spec = probe["tcpSocket"]
            port = resolve_port(spec["port"], container)
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(spec.get("host") or pod_ip, port), timeout)
            writer.close()
            return True, ""
        if "grpc" in probe:
            return await grpc_check(pod_ip, int(probe["grpc"]["port"]),
                                    probe["grpc"].get("service") or "", timeout)
    except asyncio.TimeoutError:
        return False, f"probe timed out after {timeout}s"
    except (OSError, aiohttp.ClientError, ValueError) as error:
        return False, str(error) or type(error).__name__
    return False, "probe has no handler (exec, httpGet, tcpSocket or grpc)"


# grpc.health.v1.HealthCheckResponse.ServingStatus
GRPC_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _health_request(service: str) -> bytes:
    """HealthCheckRequest{service}: protobuf field 1, length-delimited (empty when unset)."""
    data = service.encode()
    if not data:
        return b""
    length, varint = len(data), b""
    while True:
        byte, length = length & 0x7F, length >> 7
        varint += bytes([byte | (0x80 if length else 0)])
        if not length:
            return b"\x0a" + varint + data


def _health_status(message: bytes) -> int:
    """HealthCheckResponse.status (field 1, varint); 0 (UNKNOWN) when absent."""
    if len(message) >= 2 and message[0] == 0x08:
        return message[1] & 0x7F
    return 0


async def grpc_check(host: str, port: int, service: str, timeout: float) -> tuple[bool, str]:
    """The gRPC health checking protocol's Check, as kubelet's grpc probe calls it."""
    import grpc

    async with grpc.aio.insecure_channel(f"{host}:{port}") as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=lambda raw: raw,
                                    response_deserializer=lambda raw: raw)
        try:
            reply = await check(_health_request(service), timeout=timeout)
        except grpc.aio.AioRpcError as error:
            return False, (f"failed to connect service \"{host}:{port}\" within {timeout}s: "
                           f"{error.code().name}: {error.details()}")
    status = _health_status(reply)
    if status != 1:
        return False, f"service unhealthy (responded with \"{GRPC_STATUS.get(status, status)}\")"
    return True, ""


def record(probe: dict, state: ProbeState, success: bool, message: str) -> bool | None:
    """Count one run; returns the new verdict when it changed, else None."""
    t = timing(probe)
    state.last_run = time.monotonic()
    state.last_message = message
    if success:
        state.successes, state.failures = state.successes + 1, 0
        if state.result is not True and state.successes >= t["successThreshold"]:
            state.result = True
            return True
    else:
        state.failures, state.successes = state.failures + 1, 0
        if state.result is not False and state.failures >= t["failureThreshold"]:
            state.result = False
            return False
    return None
