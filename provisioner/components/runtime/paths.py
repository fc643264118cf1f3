"""Default locations of the container runtime (see the runtime README, "Default locations").

Kept free of imports beyond the standard library: the shim and the CLI both read it.
"""

import os

DEFAULT_ROOT = "/var/lib/provisioner/runtime"
DEFAULT_RUN_DIR = "/run/provisioner-runtime"
DEFAULT_SOCKET = os.path.join(DEFAULT_RUN_DIR, "runtime.sock")
SOCKET_ENV = "PROVISIONER_RUNTIME_SOCKET"
DEFAULT_CGROUP_PARENT = "provisioner-runtime"


def socket_path(explicit: str | None = None) -> str:
    """The daemon socket: --socket, then $PROVISIONER_RUNTIME_SOCKET, then the default."""
    return explicit or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET


def images_dir(root: str = DEFAULT_ROOT) -> str:
    return os.path.join(root, "images")


def containers_dir(root: str = DEFAULT_ROOT) -> str:
    return os.path.join(root, "containers")


def container_dir(container_id: str, root: str = DEFAULT_ROOT) -> str:
    """containers/<id>/: config.json, state.json, rootfs/, upper/, work/, container.log."""
    return os.path.join(containers_dir(root), container_id)


def container_log(container_id: str, root: str = DEFAULT_ROOT) -> str:
    return os.path.join(container_dir(container_id, root), "container.log")


def netns_dir(run_dir: str = DEFAULT_RUN_DIR) -> str:
    """Named network namespaces live on tmpfs: their handles do not survive a reboot."""
    return os.path.join(run_dir, "netns")


def netns_path(container_id: str, run_dir: str = DEFAULT_RUN_DIR) -> str:
    return os.path.join(netns_dir(run_dir), container_id)
