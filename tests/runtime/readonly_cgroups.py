"""Python source that makes the running process see a read-only cgroup filesystem.

Prepended to a `python -c` script, it gives that process its own mount namespace in which
/sys/fs/cgroup is an empty read-only tmpfs: a host as seen from inside an unprivileged container.
"""

READ_ONLY_CGROUPS_PREAMBLE = """
import os
from provisioner.components.runtime.container import syscalls as _sc
_sc.unshare(_sc.CLONE_NEWNS)
_sc.mount(None, "/", None, _sc.MS_REC | _sc.MS_PRIVATE)
_sc.mount("tmpfs", "/sys/fs/cgroup", "tmpfs", 0, "mode=755")
os.mkdir("/sys/fs/cgroup/memory")
_sc.mount(None, "/sys/fs/cgroup", None, _sc.MS_REMOUNT | _sc.MS_RDONLY, "mode=755")
"""
