"""proxy/server: kube-proxy's plain-HTTP endpoints: /healthz (and /livez) on 10256 answering JSON
with lastUpdated and currentTime, 200 while rules are in sync and 503 otherwise; /metrics on 10249
in Prometheus format."""

from __future__ import annotations

import datetime as dt
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .proxier import Proxier


def _stamp(monotonic: float) -> str:
    wall = time.time() - (time.monotonic() - monotonic) if monotonic else 0
    return dt.datetime.fromtimestamp(wall, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def healthz_app(proxier: Proxier) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        body = {"lastUpdated": _stamp(proxier.last_sync), "currentTime": _stamp(time.monotonic())}
        return web.json_response(body, status=200 if proxier.healthy() else 503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", healthz)
    return app


def metrics_app(proxier: Proxier) -> web.Application:
    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(proxier.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
