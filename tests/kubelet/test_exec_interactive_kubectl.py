"""Real kubectl exec with stdin (-i) and a terminal (-it) through the real API server to the
kubelet and into a pod, over WebSocket (kubectl's default) and over SPDY/3.1
(KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false): piped input comes back, its end ends the command, the
terminal is the container's /dev/pts/N sized as kubectl's and follows its resizes, exit codes
pass through, a terminal's command is hung up when its kubectl goes away, kubectl attach feeds a container's stdin, kubectl run -it gets its terminal and
kubectl cp copies both ways. And the v5 channel protocol itself: stdin, resize and close on the
kubelet's WebSocket."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.terminal import Terminal

from .conftest import pod_manifest, prepare_namespace, wait_for
from .test_server import admin

KUBECTL = str(Path(sys.prefix) / "bin" / "kubectl")


@pytest.fixture(scope="module")
def shell_pod(api, kubelet, cluster):
    namespace = f"exec-it-{uuid.uuid4().hex[:6]}"
    prepare_namespace(api, cluster, namespace)
    api.create_namespaced_pod(namespace, pod_manifest("shell", kubelet.node, [
        {"name": "main", "image": "busybox:latest", "command": ["sleep", "3600"]}]))
    wait_for(lambda: api.read_namespaced_pod("shell", namespace).status.phase == "Running", 60,
             what="the shell pod running")
    yield namespace
    api.delete_namespace(namespace)


# kubectl's remote command transports: its default, and the SPDY/3.1 it falls back to
TRANSPORTS = pytest.mark.parametrize("websockets", [True, False], ids=["websocket", "spdy"])


def kubectl_env(websockets: bool = True) -> dict:
    return {**os.environ, "TERM": "xterm",
            "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "true" if websockets else "false"}


def kubectl(cluster, *args: str, websockets: bool = True,
            **options) -> subprocess.CompletedProcess:
    return subprocess.run([KUBECTL, "--kubeconfig", str(cluster.kubeconfig), *args],
                          capture_output=True, text=True, timeout=120,
                          env=kubectl_env(websockets), **options)


@TRANSPORTS
def test_kubectl_exec_i_returns_piped_input_and_ends_at_its_end(cluster, shell_pod, websockets):
    data = "".join(f"line {n}\n" for n in range(5000))
    result = kubectl(cluster, "exec", "-i", "-n", shell_pod, "shell", "--", "cat", input=data,
                     websockets=websockets)
    assert result.returncode == 0, result.stderr
    assert result.stdout == data
    code = kubectl(cluster, "exec", "-i", "-n", shell_pod, "shell", "--", "sh", "-c",
                   "read code; echo to-stderr >&2; exit $code", input="3\n",
                   websockets=websockets)
    assert code.returncode == 3
    assert "to-stderr" in code.stderr
    assert "command terminated with exit code 3" in code.stderr


def test_kubectl_exec_over_spdy_takes_the_spdy_path(cluster, shell_pod):
    result = kubectl(cluster, "exec", "-v=7", "-n", shell_pod, "shell", "--", "echo", "hi",
                     websockets=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi\n"
    # a SPDY upgrade is a POST offering the versions (a WebSocket handshake is a GET)
    assert re.search(r'verb="POST" url="[^"]*/pods/shell/exec\?', result.stderr), result.stderr
    assert "X-Stream-Protocol-Version: v4.channel.k8s.io" in result.stderr
    assert '"Response" status="101 Switching Protocols"' in result.stderr


@TRANSPORTS
def test_kubectl_exec_it_runs_on_the_containers_terminal(cluster, shell_pod, websockets):
    terminal = Terminal([KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "exec", "-it", "-n",
                         shell_pod, "shell", "--", "sh"], rows=33, cols=111,
                        env=kubectl_env(websockets))
    try:
        terminal.expect("# ")
        terminal.type("tty; stty size; echo mark-$((40+2))\r")
        terminal.expect("mark-42")
        assert b"/dev/pts/" in terminal.screen
        assert b"33 111" in terminal.screen
        terminal.resize_until_seen(21, 87)
        terminal.type("exit 5\r")
        assert terminal.exit_code() == 5
    finally:
        terminal.close()


def running_on_the_node(argv: list[str]) -> bool:
    """Whether a process with exactly this command line runs on this host (the pod's node)."""
    wanted = b"\0".join(arg.encode() for arg in argv) + b"\0"
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes() == wanted:
                return True
        except OSError:          # gone meanwhile
            pass
    return False


@TRANSPORTS
def test_a_terminal_whose_kubectl_is_gone_is_hung_up(cluster, shell_pod, websockets):
    command = ["sleep", "4321" if websockets else "4322"]
    terminal = Terminal([KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "exec", "-it", "-n",
                         shell_pod, "shell", "--", *command], rows=24, cols=80,
                        env=kubectl_env(websockets))
    try:
        wait_for(lambda: running_on_the_node(command), 60, what="the command running")
    finally:
        terminal.close()      # kubectl killed, as when its window is closed
    wait_for(lambda: not running_on_the_node(command), 60,
             what="the command hung up once kubectl was gone")
    # and the node goes on: another exec answers at once (a hang-up once left the runtime's
    # event loop reading a closed terminal)
    done = kubectl(cluster, "exec", "-n", shell_pod, "shell", "--", "echo", "still here",
                   websockets=websockets)
    assert done.stdout == "still here\n", done.stderr


@TRANSPORTS
def test_kubectl_cp_copies_a_file_in_and_out(cluster, shell_pod, websockets, tmp_path):
    source = tmp_path / "notes.txt"
    source.write_bytes(os.urandom(200 * 1024).hex().encode())
    target = f"/tmp/notes-{'ws' if websockets else 'spdy'}.txt"
    result = kubectl(cluster, "cp", "-n", shell_pod, str(source), f"shell:{target}",
                     websockets=websockets)
    assert result.returncode == 0, result.stderr
    copied = kubectl(cluster, "exec", "-n", shell_pod, "shell", "--", "md5sum", target)
    assert copied.stdout.split()[0] == hashlib.md5(source.read_bytes()).hexdigest()
    back = tmp_path / "back.txt"
    result = kubectl(cluster, "cp", "-n", shell_pod, f"shell:{target}", str(back),
                     websockets=websockets)
    assert result.returncode == 0, result.stderr
    assert back.read_bytes() == source.read_bytes()


async def _v5_session(kubelet, cluster, path: str, messages: list[bytes]) -> list[tuple]:
    frames = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"wss://127.0.0.1:{kubelet.port}{path}",
                                      ssl=admin(cluster),
                                      protocols=("v5.channel.k8s.io",)) as ws:
            for message in messages:
                await ws.send_bytes(message)
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY:
                    frames.append((message.data[0], message.data[1:]))
    return frames


def test_v5_stdin_resize_and_close_on_the_kubelets_websocket(kubelet, cluster, shell_pod):
    piped = f"/exec/{shell_pod}/shell/main?command=cat&stdin=1&stdout=1&stderr=1"
    frames = asyncio.run(_v5_session(kubelet, cluster, piped,
                                     [b"\x00hello ", b"\x00world", b"\xff\x00"]))
    assert b"".join(data for channel, data in frames if channel == 1) == b"hello world"
    [status] = [json.loads(data) for channel, data in frames if channel == 3]
    assert status["status"] == "Success"
    on_tty = (f"/exec/{shell_pod}/shell/main?command=sh&command=-c&command=read+x%3B+stty+size"
              f"&stdin=1&stdout=1&tty=1")
    resize = b"\x04" + json.dumps({"Width": 77, "Height": 22}).encode()
    frames = asyncio.run(_v5_session(kubelet, cluster, on_tty, [resize, b"\x00go\r"]))
    assert b"22 77" in b"".join(data for channel, data in frames if channel == 1)


@TRANSPORTS
def test_kubectl_attach_i_feeds_the_containers_own_stdin(api, kubelet, cluster, shell_pod,
                                                         websockets):
    reader = "reader-ws" if websockets else "reader-spdy"
    api.create_namespaced_pod(shell_pod, pod_manifest(reader, kubelet.node, [
        {"name": "main", "image": "busybox:latest", "stdin": True, "stdinOnce": True,
         "command": ["sh", "-c", "cat; echo stdin-ended"]}], restartPolicy="Never"))
    wait_for(lambda: api.read_namespaced_pod(reader, shell_pod).status.phase == "Running", 60,
             what="the reader pod running")
    result = kubectl(cluster, "attach", "-i", "-n", shell_pod, reader, input="piped line\n",
                     websockets=websockets)
    assert result.returncode == 0, result.stderr
    assert "piped line" in result.stdout
    wait_for(lambda: api.read_namespaced_pod(reader, shell_pod).status.phase == "Succeeded",
             60, what="the reader pod done once its stdin ended")
    logs = kubectl(cluster, "logs", "-n", shell_pod, reader)
    assert logs.stdout.splitlines() == ["piped line", "stdin-ended"]


@TRANSPORTS
def test_kubectl_run_it_gets_a_shell_on_the_containers_terminal(kubelet, cluster, shell_pod,
                                                                websockets):
    overrides = json.dumps({"spec": {"nodeName": kubelet.node}})
    runner = "runner-ws" if websockets else "runner-spdy"
    terminal = Terminal([KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "run", "-it", "-n",
                         shell_pod, runner, "--image=busybox:latest", "--restart=Never",
                         f"--overrides={overrides}", "--", "sh"], rows=26, cols=95,
                        env=kubectl_env(websockets))
    try:
        terminal.expect("# ", timeout=120)     # the first prompt, though written before attach
        terminal.type("tty; stty size; echo pid-$$\r")
        terminal.expect("pid-1")               # the shell is the container's PID 1
        assert b"/dev/pts/0" in terminal.screen
        # kubectl attach sizes the terminal one row and column larger, then to its own size
        # (a redraw): the shell may have answered in between
        terminal.resize_until_seen(26, 95)
        terminal.type("exit 3\r")
        assert terminal.exit_code(timeout=120) == 3
    finally:
        terminal.close()
