"""The container init's side of its console (console.py): for a container created with a stdin
(`stdin_open`) or a terminal (`terminal`), spec.console_socket names the console process's
socket. The init connects to it while it still sees the host's filesystem; then either receives
its stdin (a pipe's read end) at once, or, once its root filesystem is ready, opens a
pseudo-terminal from the container's devpts, sends the master over and makes the slave its
controlling terminal and fds 0, 1 and 2 (runc's console socket does the same for a terminal).

Called from launcher.run_init in the freshly forked init; imports only what it needs, before the
root filesystem changes.
"""

import os
import socket

SUN_PATH_MAX = 107     # a unix socket's path is at most 108 bytes with its NUL


class ShortPath:
    """A socket path usable for bind/connect however deep its directory: a long one is reached
    through /proc/self/fd/N of its directory, held open while in use."""

    def __init__(self, path: str):
        self.fd = None
        self.path = path
        if len(path.encode()) > SUN_PATH_MAX:
            directory, name = os.path.split(path)
            self.fd = os.open(directory, os.O_PATH | os.O_CLOEXEC)
            self.path = f"/proc/self/fd/{self.fd}/{name}"

    def __enter__(self) -> str:
        return self.path

    def __exit__(self, *_) -> None:
        if self.fd is not None:
            os.close(self.fd)


class InitLink:
    def __init__(self, path: str):
        import fcntl
        import termios

        self._fcntl, self._termios = fcntl, termios
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with ShortPath(path) as reachable:
            self.sock.connect(reachable)
        # the console answers with a stdin pipe's read end, or "T": a terminal, opened later
        message, fds, _, _ = socket.recv_fds(self.sock, 16, 1)
        self.terminal = message == b"T"
        if fds:
            os.dup2(fds[0], 0)
            os.close(fds[0])
        elif not self.terminal:
            raise OSError(f"the container's console at {path} sent neither stdin nor a "
                          f"terminal request")

    def take_terminal(self) -> None:
        """Inside the container's root: the pty from its devpts becomes the controlling
        terminal (the init is a session leader already) on fds 0, 1 and 2."""
        master, slave = os.openpty()
        socket.send_fds(self.sock, [b"pty"], [master])
        os.close(master)
        self.sock.close()
        self._fcntl.ioctl(slave, self._termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        os.close(slave)


def connect(spec) -> "InitLink | None":
    """Before the namespaces and root change: the link to the console (the stdin pipe is fd 0
    from here on); None for a container without a console, or once nothing is left to do."""
    path = getattr(spec, "console_socket", None)
    if not path:
        return None
    link = InitLink(path)
    if not link.terminal:
        link.sock.close()
        return None
    return link
