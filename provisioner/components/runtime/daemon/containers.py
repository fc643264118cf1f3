"""runtime/daemon: the containers the daemon owns: create, start, stop, kill, remove, wait, exec.

A create request is checked whole (name, image, ports, volumes, sizes) before anything is made;
then the container gets its directory, its network (a netns on the bridge, the host's, none, or
its pod's) and its record. Start hands a ContainerSpec to the core, which forks the shim; the shim
outlives the daemon, so a restarted daemon re-adopts containers from their records and the core's
state files. Blocking core calls run in threads so the API stays responsive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import signal as signals
from collections.abc import AsyncIterator, Callable

from ..container import api as core
from ..container import console
from ..container.cgroups import remove as remove_cgroups
from ..container.cgroups import set_cpu_shares
from ..container.errors import ContainerError
from ..container.spec import ContainerSpec, Mount, Process, Resources
from ..images import ImageNotFound, ImageStore
from . import options
from .errors import BadRequest, Conflict, DaemonError, NotFound
from .interactive import AsyncExec
from .names import VALID_NAME, generated_name, new_id
from .netplug import NetworkPlug
from .pipes import run_with_pipes
from .state import ContainerRecord, StateDirectory, now_rfc3339

log = logging.getLogger("provisioner.runtime.daemon")
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LOG_FILE = "container.log"


def never_started(record: ContainerRecord) -> core.ContainerState:
    return core.ContainerState(status="created", pid=None, exit_code=None, oom_killed=False,
                               started_at=None, finished_at=None, cgroup_warning=None)


class ContainerService:
    def __init__(self, state: StateDirectory, store: ImageStore, network: NetworkPlug,
                 cgroup_parent: str):
        self.state = state
        self.store = store
        self.network = network
        self.cgroup_parent = cgroup_parent
        self.records: dict[str, ContainerRecord] = {}
        self._exited: dict[str, asyncio.Event] = {}
        # Called once per run with (record, final state) when a container's exit is known,
        # also when a remove overtakes the exit watch: the Docker API's `die` event and
        # restart policies hang on it.
        self.exit_listeners: list[Callable[[ContainerRecord, core.ContainerState], None]] = []
        self._unreported: set[str] = set()      # running, or exited and not yet reported
        self._create_lock = asyncio.Lock()
        self._locks: dict[str, asyncio.Lock] = {}
        self.pods = None          # set by the PodService: gives the namespaces a pod member joins
        self._creating: ContainerRecord | None = None      # being created (under _create_lock)
        network.name_of = self._name_of

    # -- lookups --------------------------------------------------------------------------

    def find(self, key: str) -> ContainerRecord:
        if key in self.records:
            return self.records[key]
        for record in self.records.values():
            if record.name == key or record.name == key.lstrip("/"):
                return record
        matches = [record for record in self.records.values() if record.id.startswith(key)]
        if len(matches) == 1 and key:
            return matches[0]
        if len(matches) > 1:
            raise NotFound(f"container id prefix {key!r} matches {len(matches)} containers; "
                           "give more characters or the name")
        raise NotFound(f"no such container: {key}")

    def _name_of(self, owner_id: str) -> str | None:
        """The name of a container (or pod) by id, for messages; None when unknown."""
        creating = self._creating
        if creating is not None and creating.id == owner_id:
            return creating.name
        if owner_id in self.records:
            return self.records[owner_id].name
        pod = self.pods.records.get(owner_id) if self.pods is not None else None
        return f"{pod.namespace}/{pod.name}" if pod is not None else None

    def directory(self, record: ContainerRecord) -> str:
        return self.state.container_dir(record.id)

    def log_path(self, record: ContainerRecord) -> str:
        return os.path.join(self.directory(record), LOG_FILE)

    def status(self, record: ContainerRecord) -> core.ContainerState:
        """From the core's state files; a container never started has none."""
        if not record.started_once:
            return never_started(record)
        try:
            return core.state(self.directory(record))
        except (ContainerError, FileNotFoundError):
            return never_started(record)

    def is_running(self, record: ContainerRecord) -> bool:
        return self.status(record).status == "running"

    def _lock(self, container_id: str) -> asyncio.Lock:
        return self._locks.setdefault(container_id, asyncio.Lock())

    # -- create ---------------------------------------------------------------------------

    async def create(self, body: dict, internal_pod_sandbox: bool = False) -> ContainerRecord:
        if not isinstance(body, dict) or not body.get("image"):
            raise BadRequest("a container needs an image (the request has no \"image\")")
        ref = options.as_text(body["image"], "image", '"busybox:latest"')
        labels = options.as_labels(body.get("labels"))
        user = options.as_user(body.get("user"))
        hostname = options.as_hostname(body.get("hostname"))
        workdir = options.as_workdir(body.get("workdir"))
        name = options.as_text(body.get("name"), "name", '"web"')
        try:
            image = await asyncio.to_thread(self.store.resolve, ref)
        except ImageNotFound:
            raise NotFound(f"no such image: {ref} (pull it, load it or build it first)") from None
        image_config = image.config.get("config") or {}
        entrypoint = options.as_command(body.get("entrypoint"), "entrypoint")
        cmd = options.as_command(body.get("cmd"), "cmd") or None
        if entrypoint is None:
            entrypoint = image_config.get("Entrypoint") or []
            if cmd is None:
                cmd = image_config.get("Cmd") or []
        args = [*entrypoint, *(cmd or [])]
        if not args:
            raise BadRequest(f"no command to run: image {ref} has neither an entrypoint nor a "
                             "cmd; give one after the image name")
        env = options.merge_env(image_config.get("Env") or [DEFAULT_PATH],
                                options.parse_env(body.get("env")))
        if not any(item.startswith("PATH=") for item in env):
            env.insert(0, DEFAULT_PATH)
        volumes = [options.parse_volume(spec)
                   for spec in options.as_list(body.get("volumes"), "volumes")]
        network = options.as_text(body.get("network"), "network", '"bridge"') or "bridge"
        pod_id = options.as_text(body.get("pod"), "pod", "a pod id")
        if pod_id:
            network = "pod"
        elif network not in ("bridge", "host", "none"):
            raise BadRequest(f"unknown network {network!r}: use bridge, host or none")
        ports = options.parse_ports(body.get("ports"))
        if ports and network != "bridge":
            raise BadRequest(f"-p publishes ports of the bridge network; with --network "
                             f"{network} there is nothing to publish (drop -p)")
        record = ContainerRecord(
            id=new_id(), name="", image=ref, image_id=image.id, created=now_rfc3339(),
            args=args, env=env,
            workdir=workdir or image_config.get("WorkingDir") or "/",
            user=user or image_config.get("User") or "0:0",
            hostname=hostname or "",
            memory=options.parse_size(body.get("memory")), cpus=options.parse_cpus(body.get("cpus")),
            pids=options.parse_pids(body.get("pids")), ports=ports,
            cpu_shares=options.parse_cpu_shares(body.get("cpu_shares")),
            volumes=[f"{src}:{dst}:{'ro' if ro else 'rw'}" for src, dst, ro in volumes],
            network=network, auto_remove=bool(body.get("auto_remove")), pod=pod_id,
            entrypoint=entrypoint, cmd=cmd, labels=labels,
            capabilities=options.capabilities(body.get("cap_add"), body.get("cap_drop"),
                                              bool(body.get("privileged"))),
            read_only=bool(body.get("read_only")),
            no_new_privileges=body.get("no_new_privileges", not body.get("privileged")) is not False)
        record.seccomp = options.seccomp(body.get("seccomp"), bool(body.get("privileged")),
                                         record.capabilities)
        record.sysctls = options.sysctls(body.get("sysctls"), network)
        record.unmasked_proc = options.proc_mount(body.get("proc_mount"))
        record.tty, record.stdin_open, record.stdin_once = (
            bool(body.get(key)) for key in ("tty", "stdin_open", "stdin_once"))
        record.hostname = record.hostname or record.id[:12]
        async with self._create_lock:
            record.name = self._claim_name(name)
            if pod_id:
                pod = self.pods.find(pod_id)
                record.pod = pod.id
                record.netns = pod.netns
                record.hostname = hostname or pod.hostname
            record.user_namespace = options.user_namespace(
                body.get("userns"), [r.user_namespace for r in self.records.values()],
                next((r.user_namespace for r in self.records.values()
                      if record.pod and r.pod == record.pod and r.user_namespace), None))
            directory = self.directory(record)
            os.makedirs(directory)
            self._creating = record
            try:
                if network == "bridge":
                    record.netns, record.ip = await asyncio.to_thread(
                        self.network.connect, record.id, ports)
                self.state.save_container(record)
            except BaseException:
                await asyncio.to_thread(self._undo_create, record)
                raise
            finally:
                self._creating = None
            self.records[record.id] = record
        log.info("created container %s (%s) from %s", record.name, record.id[:12], ref)
        return record

    def _claim_name(self, name: str | None) -> str:
        taken = {record.name: record.id for record in self.records.values()}
        if not name:
            return generated_name(set(taken))
        name = name.lstrip("/")
        if not VALID_NAME.match(name):
            raise BadRequest(f"invalid container name {name!r}: use letters, digits, _ . - "
                             "(starting with a letter or digit)")
        if name in taken:
            raise Conflict(f"name {name} is already in use by container {taken[name]}: remove "
                           f"it first (provisioner-runtime rm {name}) or choose another --name")
        return name

    def _undo_create(self, record: ContainerRecord) -> None:
        if record.network == "bridge":
            self.network.disconnect(record.id)
        shutil.rmtree(self.directory(record), ignore_errors=True)

    # -- start, stop, kill ----------------------------------------------------------------

    def spec_of(self, record: ContainerRecord) -> ContainerSpec:
        image = self.store.resolve(record.image_id)
        mounts = []
        for volume in record.volumes:
            source, destination, mode = volume.rsplit(":", 2)
            mounts.append(Mount(source, destination, "bind",
                                (["rbind", "ro"] if mode == "ro" else ["rbind"])
                                # a private user namespace sees volumes idmapped, as CRI does
                                + (["idmap"] if record.user_namespace else [])))
        namespaces: dict[str, str | None] = {"mount": None, "pid": None, "uts": None, "ipc": None}
        if record.network == "bridge":
            namespaces["net"] = record.netns
        elif record.network == "none":
            namespaces["net"] = None
        elif record.network == "host":
            del namespaces["uts"]         # as Docker: the host's network comes with its hostname
        elif record.network == "pod":
            namespaces.update(self.pods.namespaces_for(record))
        return ContainerSpec(
            id=record.id, state_dir=self.directory(record),
            lower_dirs=self.store.layer_dirs(image),
            process=Process(args=record.args, env=[*record.env, f"HOSTNAME={record.hostname}"],
                            cwd=record.workdir, user=record.user,
                            capabilities=record.capabilities,
                            no_new_privileges=record.no_new_privileges, seccomp=record.seccomp),
            readonly_rootfs=record.read_only,
            hostname=record.hostname, mounts=mounts,
            resources=Resources(record.memory, record.cpus, record.pids, record.cpu_shares),
            namespaces=namespaces, log_path=self.log_path(record),
            cgroup_parent=(self.pods.cgroup_parent_of(record) if self.pods is not None
                           else "") or self.cgroup_parent,
            user_namespace=record.user_namespace,
            sysctls=record.sysctls, unmasked_proc=record.unmasked_proc)

    async def start(self, key: str) -> core.ContainerState:
        record = self.find(key)
        async with self._lock(record.id):
            current = self.status(record)
            if current.status == "running":
                return current
            self._report_exit(record)      # the previous run, if its exit task is behind
            if record.started_once and current.cgroups:
                # The previous run's cgroup goes; its upper dir (the container's writes) and its
                # log stay, as Docker keeps them across a restart. core.delete would drop both.
                await asyncio.to_thread(remove_cgroups, current.cgroups)
            try:
                started = await asyncio.to_thread(self._start_in_thread, record)
            except ImageNotFound as error:
                raise NotFound(f"cannot start {record.name}: {error}") from None
            except ContainerError as error:
                raise DaemonError(f"cannot start container {record.name}: {error.message}") \
                    from None
            record.started_once = True
            self.state.save_container(record)
            if record.cpu_shares is not None and started.cgroups:
                await asyncio.to_thread(set_cpu_shares, started.cgroups, record.cpu_shares)
            if started.cgroup_warning:
                log.warning("container %s: %s", record.name, started.cgroup_warning)
            self._watch(record.id, started.pid, started.monitor_pid)
            return started

    def _start_in_thread(self, record: ContainerRecord) -> core.ContainerState:
        """The spec, the console if any and the core's start in one worker thread: every hop
        between the event loop and a thread is a start's wait."""
        spec = self.spec_of(record)
        if record.tty or record.stdin_open:
            spec.console_socket = console.launch(spec.state_dir, record.tty, record.stdin_once,
                                                 spec.log_path, spec.log_max_bytes)
        return core.start(spec)

    async def stop(self, key: str, grace_seconds: float = 10) -> core.ContainerState:
        record = self.find(key)
        if not self.is_running(record):
            return self.status(record)
        try:
            result = await asyncio.to_thread(core.stop, self.directory(record), grace_seconds)
        except ContainerError:
            if not record.auto_remove:
                raise
            # Its exit removed it (auto-remove) while this stop waited for the exit: stopped, as
            # asked (Docker answers such a stop with success too); its state went with it.
            return dataclasses.replace(never_started(record), status="exited")
        await self._settled(record)
        self._report_exit(record)
        return result

    async def kill(self, key: str, signal: int | str = "KILL") -> None:
        record = self.find(key)
        if not self.is_running(record):
            raise Conflict(f"container {record.name} is not running")
        await asyncio.to_thread(core.kill, self.directory(record), parse_signal(signal))

    async def wait(self, key: str) -> core.ContainerState:
        record = self.find(key)
        while True:
            current = self.status(record)
            if current.status == "exited":
                return current
            event = self._exited.get(record.id)
            if event is not None and current.status == "running":
                await event.wait()
            else:
                await asyncio.sleep(0.1)

    async def remove(self, key: str, force: bool = False) -> None:
        record = self.find(key)
        async with self._lock(record.id):
            if record.id not in self.records:
                return             # removed meanwhile (--rm on exit)
            if self.is_running(record):
                if not force:
                    raise Conflict(f"container {record.name} is running: stop it first "
                                   f"(provisioner-runtime stop {record.name}) or use rm -f")
                await asyncio.to_thread(core.kill, self.directory(record), signals.SIGKILL)
                await self._settled(record)
            self._report_exit(record)
            if record.started_once:
                await asyncio.to_thread(core.delete, self.directory(record))
            self.records.pop(record.id, None)
            self._exited.pop(record.id, None)
            await asyncio.to_thread(self._undo_create, record)
        self._locks.pop(record.id, None)
        log.info("removed container %s (%s)", record.name, record.id[:12])

    # -- exit watching --------------------------------------------------------------------

    def _watch(self, container_id: str, pid: int | None, monitor_pid: int | None = None) -> None:
        """Learn of the exit through a pidfd: no polling while the container runs. The
        monitor's when there is one: it ends just after it has recorded the exit, so the
        state is final at once (after the container's own, _settled waits for the record)."""
        event = self._exited.setdefault(container_id, asyncio.Event())
        event.clear()
        self._unreported.add(container_id)
        loop = asyncio.get_running_loop()
        pidfd = _pidfd(monitor_pid)
        container_pid = pid if pidfd is not None else None   # to watch if the monitor dies
        if pidfd is None:
            pidfd = _pidfd(pid)
        if pidfd is None:
            loop.create_task(self._on_exit(container_id, pid))
            return

        def exited() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            loop.create_task(self._on_exit(container_id, pid, container_pid))

        loop.add_reader(pidfd, exited)

    async def _settled(self, record: ContainerRecord, timeout: float = 10) -> None:
        """Wait until the shim has recorded the exit (it writes the status just after)."""
        for _ in range(int(timeout / 0.02)):
            if self.status(record).status != "running":
                return
            await asyncio.sleep(0.02)

    async def _on_exit(self, container_id: str, pid: int | None,
                       container_pid: int | None = None) -> None:
        record = self.records.get(container_id)
        if record is None:
            return
        current = self.status(record)
        if current.status == "running" and pid is not None and current.pid != pid:
            return        # started again before this task ran: start reported the old run
        if container_pid is not None and self.is_running(record):
            self._watch(container_id, container_pid)  # the monitor died; the container runs on
            return
        await self._settled(record)
        self._report_exit(record)
        if record.auto_remove and container_id in self.records:
            try:
                await self.remove(container_id)
            except DaemonError as error:
                log.warning("could not auto-remove %s: %s", record.name, error)

    def _report_exit(self, record: ContainerRecord) -> None:
        """Tell the waiters and the exit listeners, once per run, that the run ended."""
        event = self._exited.get(record.id)
        if event:
            event.set()
        if record.id not in self._unreported:
            return
        state = self.status(record)
        if state.status == "running":
            return                    # a stop whose wait for the record timed out
        self._unreported.discard(record.id)
        for listener in self.exit_listeners:
            try:
                listener(record, state)
            except Exception:            # one listener's bug must not lose the exit for others
                log.exception("exit listener failed for container %s", record.name)

    async def adopt(self) -> None:
        """After a daemon restart: load every record; running containers are watched again."""
        for record in self.state.load_containers():
            self.records[record.id] = record
            current = self.status(record)
            if current.status == "running":
                self._watch(record.id, current.pid, current.monitor_pid)
            elif record.auto_remove and record.started_once:
                asyncio.get_running_loop().create_task(self.remove(record.id))
        log.info("re-adopted %d containers (%d running)", len(self.records),
                 sum(1 for record in self.records.values() if self.is_running(record)))

    # -- exec -----------------------------------------------------------------------------

    def exec_target(self, key: str, body: dict) -> tuple[str, Process]:
        """The state dir of a running container and the process an exec `body` asks for."""
        record = self.find(key)
        if not self.is_running(record):
            raise Conflict(f"container {record.name} is not running: start it first")
        cmd = options.as_command(body.get("cmd"), "exec command")
        if not cmd:
            raise BadRequest("exec needs a command")
        process = Process(args=cmd, env=options.merge_env(record.env, options.parse_env(
            body.get("env"))), cwd=options.as_workdir(body.get("workdir")) or record.workdir,
            user=options.as_user(body.get("user")) or record.user,
            capabilities=record.capabilities, no_new_privileges=record.no_new_privileges,
            seccomp=record.seccomp)
        return self.directory(record), process

    async def exec(self, key: str, body: dict) -> AsyncIterator[dict]:
        state_dir, process = self.exec_target(key, body)
        async for event in run_with_pipes(
                lambda out, err: core.exec_process(state_dir, process, out, err)):
            yield event

    async def exec_interactive(self, key: str, body: dict) -> AsyncExec:
        """An exec with stdin ("stdin": true) and/or a terminal ("tty": true, "size": [rows,
        cols]) whose streams the caller carries (daemon/interactive.py)."""
        state_dir, process = self.exec_target(key, body)
        size = body.get("size")
        if size is not None and not (isinstance(size, list) and len(size) == 2 and
                                     all(isinstance(n, int) and n >= 0 for n in size)):
            raise BadRequest("exec size must be [rows, columns]")
        return await AsyncExec.start(state_dir, process, stdin=bool(body.get("stdin")),
                                     tty=bool(body.get("tty")), size=tuple(size) if size else None)


def _pidfd(pid: int | None) -> int | None:
    try:
        return os.pidfd_open(pid) if pid else None
    except ProcessLookupError:
        return None


def parse_signal(value: int | str) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    name = str(value).upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    try:
        return int(getattr(signals, name))
    except AttributeError:
        raise BadRequest(f"unknown signal {value!r}") from None
