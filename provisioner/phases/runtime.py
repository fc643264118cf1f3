"""Phase `container-runtime`: every host runs this project's container runtime under systemd.

The daemon (`provisioner-runtime.service`) gives pods their network through CNI: this project's
plugins are linked into the plugin directory here, and the network agent writes the network
configuration once the node has a podCIDR. The components image (`provisioner/components:<tag>`,
python:3.11 plus the host's virtualenv) is built on each host from what `install` placed, so
hosts never need a registry; its tag carries the wheelhouse digest, so new code means a new tag
and the static pods and add-ons that name it restart.
"""

from __future__ import annotations

import importlib.metadata
import shlex

from pyinfra.operations import files, server

from provisioner.components.netagent.cniconfig import FILE_NAME as CNI_CONF_FILE
from provisioner.phases.context import ClusterContext
from provisioner.phases.install import VENV_MARKER
from provisioner.phases.kubeconfig import NODES, node_hosts
from provisioner.phases.owned import REMOTE_VENV, DataDir, Directory, File, Owned, Unit
from provisioner.phases.units import run_unit
from provisioner.spec import Host
from provisioner.templates import render
from provisioner.workflow import Phase, Plan

UNIT = Unit("provisioner-runtime.service", NODES)
RUNTIME_ROOT = "/var/lib/provisioner/runtime"
RUNTIME_SOCKET = "/run/provisioner-runtime/runtime.sock"
CNI_CONF_DIR = "/etc/cni/net.d"
CNI_BIN_DIR = "/opt/cni/bin"
CNI_CACHE_DIR = "/var/lib/cni"
CNI_PLUGINS = ("provisioner-bridge", "provisioner-host-local", "provisioner-portmap",
               "provisioner-loopback")
IMAGE_REPOSITORY = "provisioner/components"

OWNS = Owned(
    # Symbolic links to the project's one plugin program (a link's own mode reads 777).
    files=tuple(File(f"{CNI_BIN_DIR}/{plugin}", NODES, mode="777") for plugin in CNI_PLUGINS),
    directories=(Directory(CNI_CONF_DIR, NODES), Directory(CNI_BIN_DIR, NODES)),
    units=(UNIT,),
    data_dirs=(DataDir(RUNTIME_ROOT, NODES), DataDir(CNI_CACHE_DIR, NODES)),
)



def components_image(digest: str) -> str:
    """The tag of the components image for a wheelhouse digest (the venv marker's content)."""
    version = importlib.metadata.version("provisioner")
    return f"{IMAGE_REPOSITORY}:{version}-{digest[:12]}"


def installed_digests(plan: Plan, hosts: list[Host] | None = None) -> dict[str, str]:
    """Each host's installed wheelhouse digest (install ran before this phase)."""
    results = plan.session.run(f"cat {VENV_MARKER} 2>/dev/null || true", hosts)
    return {name: result.stdout.strip() for name, result in results.items()}


def image_probe(tag: str) -> str:
    """Prints `present` when the host's runtime store holds `tag`."""
    check = ("from provisioner.components.runtime.images.store import ImageStore; import sys; "
             f"sys.exit(0 if ImageStore({RUNTIME_ROOT!r}).exists({tag!r}) else 1)")
    return (f"test -d {RUNTIME_ROOT} && {REMOTE_VENV}/bin/python -c {shlex.quote(check)} "
            "&& echo present || echo missing")


def configure(ctx: ClusterContext, plan: Plan, host: Host, tag: str | None,
              venv_digest: str) -> None:
    session = plan.session
    for directory, mode in ((CNI_CONF_DIR, "755"), (CNI_BIN_DIR, "755"), (CNI_CACHE_DIR, "700")):
        session.op(host, f"directory {directory}", files.directory, path=directory, mode=mode,
                   user="root", group="root")
    for plugin in CNI_PLUGINS:
        session.op(host, f"CNI plugin {plugin}", files.link, path=f"{CNI_BIN_DIR}/{plugin}",
                   target=f"{REMOTE_VENV}/bin/provisioner-cni")
    run_unit(session, host, UNIT, render(
        "provisioner-runtime.service.j2", cluster=ctx.spec.name, venv=REMOTE_VENV,
        root=RUNTIME_ROOT, cni_conf_dir=CNI_CONF_DIR, cni_bin_dir=CNI_BIN_DIR,
        cni_cache_dir=CNI_CACHE_DIR, venv_digest=venv_digest[:16]))
    if tag is not None:
        session.op(host, f"image {tag}", server.shell, commands=[
            f"{REMOTE_VENV}/bin/python -m provisioner.components.runtime.images.component "
            f"--root {RUNTIME_ROOT} --venv {REMOTE_VENV} --tag {shlex.quote(tag)}"])


def plan_runtime(ctx: ClusterContext, plan: Plan) -> None:
    digests = installed_digests(plan)
    tags = {name: components_image(digest) for name, digest in digests.items() if digest}
    probes = {}
    hosts = node_hosts(ctx.spec)
    for tag in set(tags.values()):
        holders = [h for h in hosts if tags.get(h.name) == tag]
        probes.update({name: r.stdout.strip() for name, r in
                       plan.session.run(image_probe(tag), holders).items()})
    for host in hosts:
        tag = tags.get(host.name)
        if tag is None:  # a dry run before the first install
            plan.would(host.name, "build the components image")
        configure(ctx, plan, host, tag if tag and probes.get(host.name) != "present" else None,
                  digests.get(host.name, ""))


# What pods leave on a node besides the runtime's own files: containers and sandboxes (removed
# through the daemon while it still runs, so mounts, cgroups and CNI attachments go with them),
# then the pod network's bridge, VXLAN device and routes, and the iptables chains kube-proxy and
# the network agent own.
SWEEP_PODS = (
    "from provisioner.components.runtime.client import RuntimeClient, RuntimeAPIError\n"
    f"c = RuntimeClient({RUNTIME_SOCKET!r}, timeout=120)\n"
    "for p in c.pods():\n"
    "    try:\n        c.remove_pod(p['id'])\n"
    "    except RuntimeAPIError:\n        pass\n"
    "for x in c.containers(all=True):\n"
    "    try:\n        c.remove(x['id'], force=True)\n"
    "    except RuntimeAPIError:\n        pass\n"
)
# Containers outlive their daemon (KillMode=process); once it is gone, whatever monitor is left
# (a removal that failed) is ended with its container. Monitors are forked from the monitor
# server and carry its command line (shim: those a daemon before it started).
# (The brackets keep the pattern from matching the shell that runs it.)
MONITOR_PATTERN = "'provisioner[.]components[.]runtime[.]container[.](monitor_server|shim)'"
KILL_MONITORS = (f"for p in $(pgrep -f {MONITOR_PATTERN}); do pkill -KILL -P $p; kill -KILL $p; "
                 "done; true")
SWEEP_NETWORK = rf"""
rm -f {CNI_CONF_DIR}/{CNI_CONF_FILE}
for link in cni0 provx0; do ip link del "$link" 2>/dev/null; done
ip route flush proto 177 2>/dev/null
for table in nat filter mangle; do
  chains=$(iptables -t $table -S 2>/dev/null | awk '/^-N (KUBE-|PROV-|PROVISIONER-|CNI-)/ {{print $2}}')
  [ -n "$chains" ] || continue
  iptables -t $table -S | grep -E -- '-j (KUBE-|PROV-|PROVISIONER-|CNI-)' | grep -v '^-N'     | sed 's/^-A/-D/' | while read -r rule; do eval iptables -t $table $rule; done
  for chain in $chains; do iptables -t $table -F "$chain"; done
  for chain in $chains; do iptables -t $table -X "$chain"; done
done
true
"""


def sweep_pods_command() -> str:
    """Removes every pod and container through the daemon (when it runs)."""
    return (f"if [ -S {RUNTIME_SOCKET} ]; then {REMOTE_VENV}/bin/python -c "
            f"{shlex.quote(SWEEP_PODS)}; fi")


def cleanup_runtime(ctx: ClusterContext, plan: Plan) -> None:
    """Containers the kubelet did not own (its clean-up, which runs first, removed its pods and
    the pod network), then the runtime's unit and files."""
    from provisioner.phases.delete import remove_owned

    present = plan.session.run(f"test -S {RUNTIME_SOCKET} && echo running || echo absent")
    for host in node_hosts(ctx.spec):
        if present[host.name].stdout.strip() == "running":
            plan.session.op(host, "remove every container", server.shell,
                            commands=[sweep_pods_command()])
    remove_owned(OWNS)(ctx, plan)
    monitors = plan.session.run(f"pgrep -f {MONITOR_PATTERN} >/dev/null && echo left || echo none")
    for host in node_hosts(ctx.spec):
        if monitors[host.name].stdout.strip() == "left":
            plan.session.op(host, "end container monitors left behind", server.shell,
                            commands=[KILL_MONITORS])


def host_image(plan: Plan, host: Host) -> str:
    """The components image tag for `host`, read from its installed wheelhouse."""
    digest = plan.session.run_one(host, f"cat {VENV_MARKER} 2>/dev/null || true").stdout.strip()
    return components_image(digest or "0" * 12)


PHASE = Phase("container-runtime", "running the container runtime on every node", plan_runtime,
              owns=OWNS, run_if=lambda ctx: bool(node_hosts(ctx.spec)),
              hosts=lambda ctx: node_hosts(ctx.spec), cleanup=cleanup_runtime)
