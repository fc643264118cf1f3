"""The monitor server (a zygote): `python -S -m <this module> <socket fd>`.

One per caller of api.start (the daemon starts it with itself; monitor_client owns it). It has
imported everything a container monitor (shim.Shim) needs and frozen those objects out of the
garbage collector, then waits on the socket whose fd is its argument. For each request it forks a
monitor for one container, so a container pays neither an interpreter start-up nor the memory
of one: the monitor shares the server's pages (copy-on-write) and only what it writes is its own.

A request is one length-prefixed marshal payload {"state_dir", "spec"} sent with two fds, the
pipe the monitor reports "exec'd" (or why not) on and the monitor's own log (shim.log). The
server answers nothing: the caller reads the report pipe, which reaches EOF with no report if
anything on the way dies. The monitor starts its own session at once, so no signal meant for the
caller's or the server's process group reaches it; it is the server's child only while the
server lives (which reaps it), then init's or the nearest subreaper's, as any orphan.

End of the socket (its caller is gone): the server exits; running monitors carry on.
"""

import _signal
import _socket
import gc
import marshal
import os
import sys

from . import shim, statefile

HEADER_BYTES = 8
FDS_PER_REQUEST = 2
# a spec with a compiled seccomp program is a few tens of KiB; anything past this is not ours
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024


def _receive(sock) -> tuple[bytes, list[int]] | None:
    """One request: payload and fds; None at the end of the socket."""
    header, fds = b"", []
    space = _socket.CMSG_SPACE(FDS_PER_REQUEST * 4)
    while len(header) < HEADER_BYTES:
        data, ancillary, _flags, _address = sock.recvmsg(HEADER_BYTES - len(header), space,
                                                         _socket.MSG_CMSG_CLOEXEC)
        for level, kind, blob in ancillary:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                usable = len(blob) - len(blob) % 4
                fds += [int.from_bytes(blob[i:i + 4], sys.byteorder)
                        for i in range(0, usable, 4)]
        if not data:
            for fd in fds:
                os.close(fd)
            return None
        header += data
    length = int.from_bytes(header, "big")
    if length > MAX_PAYLOAD_BYTES:
        raise ValueError(f"request of {length} bytes refused")
    chunks, received = [], 0
    while received < length:
        chunk = sock.recv(min(length - received, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks), fds


def _become_monitor(sock, request: dict, result_fd: int, log_fd: int) -> None:
    """In the forked child: detach and run the container's monitor (never returns)."""
    code = 1
    try:
        sock.close()     # or a dead server's caller would never see the socket's end
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        os.setsid()
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        _name_process(f"shim {request['spec'].get('id', '')}")
        code = shim.serve(request["state_dir"], request["spec"], result_fd)
    except BaseException as exc:  # noqa: BLE001 - a monitor reports everything, then ends
        try:
            shim.report(result_fd, {"error": f"monitor failed: {exc!r}"})
        except OSError:
            pass
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(code)   # no interpreter teardown: waiters see the exit once state is saved


def _name_process(name: str) -> None:
    """Monitors share the server's command line: their name (ps -o comm, top, pgrep without
    -f) says whose monitor each is. The kernel keeps 15 bytes."""
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(name[:15])
    except OSError:
        pass


def _read_request(payload: bytes) -> dict:
    request = marshal.loads(payload)
    if not isinstance(request, dict) or not isinstance(request.get("state_dir"), str) \
            or not isinstance(request.get("spec"), dict):
        raise ValueError("not a monitor request")
    return request


def _spawn(sock, payload: bytes, fds: list[int]) -> None:
    if len(fds) != FDS_PER_REQUEST:
        for fd in fds:
            os.close(fd)
        return
    result_fd, log_fd = fds
    try:
        try:
            request = _read_request(payload)
        except (EOFError, ValueError, TypeError) as exc:
            os.write(result_fd, (statefile.dumps(
                {"error": f"the monitor server could not read the request: {exc}"}) +
                "\n").encode())
            return
        if os.fork() == 0:
            _become_monitor(sock, request, result_fd, log_fd)
    finally:
        os.close(result_fd)
        os.close(log_fd)


def _reap(_signum, _frame) -> None:
    """Monitors are this server's children until it ends: no zombies of exited ones."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def serve(sock) -> int:
    while True:
        received = _receive(sock)
        if received is None:
            return 0
        _spawn(sock, *received)


def main() -> int:
    sock = _socket.socket(fileno=int(sys.argv[1]))
    os.set_inheritable(sock.fileno(), False)
    _signal.signal(_signal.SIGCHLD, _reap)
    # Everything imported so far is shared with every monitor: keep the collector from
    # writing to it (gc headers) in each of them, which would copy the pages.
    gc.collect()
    gc.freeze()
    return serve(sock)


if __name__ == "__main__":
    os._exit(main())
