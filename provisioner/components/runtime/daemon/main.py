"""runtime/daemon: `provisioner-runtime daemon`, the foreground process serving the API.

Logs go to stderr. SIGTERM or SIGINT closes the socket and returns: containers keep running
under their shims, and the next daemon re-adopts them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from ..container import monitor_client
from .app import make_app
from .errors import DaemonError
from .service import DaemonConfig, RuntimeDaemon

log = logging.getLogger("provisioner.runtime.daemon")


def _claim_socket(path: str) -> None:
    """Refuse when a live daemon answers on the socket; remove a stale one."""
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)
        else:
            raise DaemonError(f"another runtime daemon is already listening on {path}; stop it "
                              "or give this one another --socket")
        finally:
            probe.close()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


async def _serve(config: DaemonConfig) -> None:
    loop = asyncio.get_running_loop()
    # Starts, stops and execs each hold a thread: room for many at once (the default is ~6).
    loop.set_default_executor(ThreadPoolExecutor(max_workers=128,
                                                 thread_name_prefix="runtime-worker"))
    _claim_socket(config.socket)
    daemon = RuntimeDaemon(config)
    # the monitor server forks every container's monitor: started now, the first container
    # does not wait for it
    await asyncio.to_thread(monitor_client.warm_up)
    await daemon.open()
    runner = web.AppRunner(make_app(daemon), handle_signals=False, shutdown_timeout=2,
                           access_log=None)
    await runner.setup()
    site = web.UnixSite(runner, config.socket)
    await site.start()
    os.chmod(config.socket, 0o660)
    if config.docker_socket:
        from ..docker.listener import listen

        try:
            _claim_socket(config.docker_socket)
        except DaemonError:
            raise DaemonError(f"something already listens on {config.docker_socket}; stop it "
                              "or give this daemon another --docker-socket (or none)") from None
        docker_api = await listen(daemon, config.docker_socket)
        log.info("Docker Engine API on %s", config.docker_socket)
    stopping = asyncio.Event()
    daemon_pid = os.getpid()

    def stop_on(signum: int, _frame) -> None:
        if os.getpid() != daemon_pid:
            # A forked helper (pyroute2's netns child) inherits this handler; its SIGTERM is
            # its own end, not the daemon's.
            os._exit(128 + signum)
        log.info("received %s", signal.Signals(signum).name)
        loop.call_soon_threadsafe(stopping.set)

    # Not loop.add_signal_handler: it routes signals through a wakeup fd that forked helpers
    # (pyroute2's netns child) inherit, so a SIGTERM sent to such a child would stop the daemon.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop_on)
    log.info("runtime daemon %s listening on %s (root %s, cgroups %s)",
             daemon.version()["version"], config.socket, config.root, daemon.cgroup_mode)
    await stopping.wait()
    if config.docker_socket:
        await docker_api.close()
    log.info("stopping the daemon; containers keep running")
    await runner.cleanup()
    for path in (config.socket, config.docker_socket):
        if path:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def serve(config: DaemonConfig) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(config))
    except DaemonError as error:
        print(f"Error: {error.message}", file=sys.stderr)
        return 1
    return 0
