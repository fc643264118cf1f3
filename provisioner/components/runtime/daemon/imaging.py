"""runtime/daemon: image operations behind the API: build, pull, push, save, load, tag, remove.

Long operations report progress lines through a callback; `events_of` turns a worker thread's
callbacks into an async stream the API writes out line by line. Builds run each RUN instruction
in a throwaway container (build/runstep.py) on the host network; when the client goes away the
step's container is stopped and deleted. Pull and push use the credentials `login` saved and the
CA files of `<root>/certs.d/<host:port>/*.crt` (and a client certificate there, `*.cert` with its
`*.key`, as Docker's); credentials given with one request (Docker's
`X-Registry-Auth`, the kubelet's imagePullSecrets) take the place of saved ones for that request
only and are never saved or logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tarfile
import tempfile
import threading
from collections.abc import AsyncIterator, Callable

from ..build.runstep import container_run_step, sweep_step_containers
from ..images import ImageStore
from ..images.errors import ImageError, RegistryError
from ..images.reference import normalize_tag
from .credentials import Credentials, CredentialStore, registry_host
from .errors import BadRequest, Conflict, Unauthorized

log = logging.getLogger("provisioner.runtime.daemon")
GONE_CHECK_SECONDS = 0.5


async def events_of(work: Callable[[Callable[[str], None], threading.Event], dict],
                    client_gone: Callable[[], bool] = lambda: False) -> AsyncIterator[dict]:
    """Run `work(progress, cancelled)` in a thread; yield {"progress": line} per call, then the
    dict it returns as {"result": ...}; its exception is raised here after the lines before it.
    `cancelled` is set when `client_gone()` turns true or this stream is closed early, and the
    worker is waited for: nothing it started outlives the request."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    cancelled = threading.Event()

    def progress(line: str) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, ("progress", line))

    def run() -> None:
        try:
            result = work(progress, cancelled)
            loop.call_soon_threadsafe(queue.put_nowait, ("result", result))
        except BaseException as error:       # noqa: BLE001 - carried over to the event loop
            loop.call_soon_threadsafe(queue.put_nowait, ("error", error))

    task = loop.run_in_executor(None, run)
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            # Not wait_for: on 3.11 its timeout can drop an item the getter already took.
            while not (await asyncio.wait({getter}, timeout=GONE_CHECK_SECONDS))[0]:
                if client_gone() and not cancelled.is_set():
                    log.info("the client went away: cancelling its build")
                    cancelled.set()
            kind, value = getter.result()
            if kind == "progress":
                yield {"progress": value}
            elif kind == "result":
                yield {"result": value}
                return
            else:
                raise value
    finally:
        if not task.done():
            cancelled.set()
        await asyncio.shield(task)


def _context_member(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo | None:
    """The build context's extraction filter: Docker sends symlinks as they are, wherever they
    point, and COPY copies them as links; so a symlink keeps its target ("tar" rules: its name
    must stay inside). Everything else gets the strict "data" rules. A name that would pass
    through an extracted symlink is still refused by either filter."""
    if member.issym():
        return tarfile.tar_filter(member, destination)
    return tarfile.data_filter(member, destination)


class ImageOperations:
    def __init__(self, store: ImageStore, root: str, cgroup_parent: str,
                 images_in_use: Callable[[], dict[str, str]]):
        self.store = store
        self.work_root = os.path.join(root, "tmp")
        os.makedirs(self.work_root, exist_ok=True)
        self.credentials = CredentialStore(root)
        # <host:port>/ca.crt (and client.cert, client.key), as Docker's
        self.certs_dir = os.path.join(root, "certs.d")
        self.cgroup_parent = cgroup_parent
        self.images_in_use = images_in_use     # image id -> name of a container using it
        self.registry_settings: dict = {}      # RegistryClient's mirrors, docker_hub_endpoint

    def temp_dir(self) -> str:
        return tempfile.mkdtemp(dir=self.work_root)

    def sweep(self) -> None:
        """At daemon start: step containers of builds a killed daemon left, and their dirs."""
        for step in sweep_step_containers(self.work_root):
            log.info("removed build step container %s left by a previous daemon", step)

    async def build(self, context_tar_path: str, tags: list[str], dockerfile: str,
                    build_args: dict[str, str], no_cache: bool,
                    client_gone: Callable[[], bool] = lambda: False) -> AsyncIterator[dict]:
        from ..build.builder import Builder

        context_dir = self.temp_dir()

        def work(progress: Callable[[str], None], cancelled: threading.Event) -> dict:
            try:
                with tarfile.open(context_tar_path) as archive:
                    archive.extractall(context_dir, filter=_context_member)
                builder = Builder(self.store, container_run_step(
                    self.work_root, self.cgroup_parent, cancelled))
                options = {"no_cache": True} if no_cache else {}
                image = builder.build(context_dir, dockerfile=dockerfile, tags=tags,
                                      build_args=build_args, progress=progress, **options)
                return {"id": image.id, "tags": image.tags}
            except tarfile.FilterError as error:
                raise BadRequest(f"the build context entry {error.tarinfo.name!r} is refused: "
                                 f"{type(error).__name__} (it would land outside the "
                                 "context or is a device)") from None
            except tarfile.TarError as error:
                raise BadRequest(f"the build context is not a readable tar ({error})") from None
            finally:
                shutil.rmtree(context_dir, ignore_errors=True)

        async for event in events_of(work, client_gone):
            yield event

    def _registry(self, progress: Callable[[str], None], ref: str,
                  given: Credentials | None):
        from ..images.reference import parse_reference
        from ..images.registry import RegistryClient

        credentials = self.credentials.all()
        if given is not None:
            credentials[parse_reference(ref).registry] = given
        return RegistryClient(self.store, credentials=credentials, **self.registry_settings,
                              certs_dir=self.certs_dir, progress=progress)

    async def pull(self, ref: str, insecure: bool,
                   credentials: Credentials | None = None) -> AsyncIterator[dict]:
        """`credentials` (user, password) for the image's registry, this pull only."""
        async for event in self._registry_events(
                lambda progress: self._registry(progress, ref, credentials).pull(ref, insecure),
                lambda image: {"id": image.id, "digest": image.digest, "tags": image.tags}):
            yield event

    async def push(self, ref: str, insecure: bool,
                   credentials: Credentials | None = None) -> AsyncIterator[dict]:
        self.store.resolve(ref)
        async for event in self._registry_events(
                lambda progress: self._registry(progress, ref, credentials).push(ref, insecure),
                lambda digest: {"digest": digest, "ref": ref}):
            yield event

    async def login(self, registry: str, user: str, password: str, insecure: bool) -> str:
        """Check the credentials against the registry, then save them; returns the host."""
        from ..images.registry import RegistryClient

        host = registry_host(registry)
        if not user or not password:
            raise BadRequest("login needs a user name and a password")
        client = RegistryClient(self.store, credentials={host: (user, password)},
                                certs_dir=self.certs_dir)
        try:
            await client.login(host, insecure)
        except RegistryError as error:
            raise Unauthorized(str(error)) from None
        await asyncio.to_thread(self.credentials.save, host, user, password)
        log.info("saved credentials of user %s for registry %s", user, host)
        return host

    def logout(self, registry: str) -> tuple[str, bool]:
        host = registry_host(registry)
        removed = self.credentials.remove(host)
        if removed:
            log.info("removed the saved credentials for registry %s", host)
        return host, removed

    async def _registry_events(self, start, describe) -> AsyncIterator[dict]:
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.ensure_future(start(lambda line: queue.put_nowait(line)))
        while not task.done() or not queue.empty():
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield {"progress": getter.result()}
            else:
                getter.cancel()
        yield {"result": describe(task.result())}

    def save(self, refs: list[str]) -> str:
        """The OCI tarball of `refs` in a temporary file the caller sends and removes."""
        from ..images import archive

        for ref in refs:
            self.store.resolve(ref)
        path = os.path.join(self.temp_dir(), "image.tar")
        try:
            archive.save_to_path(self.store, refs, path)
        except BaseException:
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)
            raise
        return path

    def load(self, tar_path: str) -> list[dict]:
        from ..images import archive

        return [{"id": image.id, "tags": image.tags} for image in archive.load(self.store, tar_path)]

    def bootstrap(self) -> list[dict]:
        """busybox:latest and python:3.11 from the host's files, made only when missing."""
        from ..images.bootstrap import ensure_bootstrap_images

        return [{"id": image.id, "tags": image.tags}
                for image in ensure_bootstrap_images(self.store)]

    def tag(self, source: str, target: str) -> None:
        self.store.tag(self.store.resolve(source), target)

    def remove(self, ref: str) -> list[str]:
        image = self.store.resolve(ref)
        try:
            tag = normalize_tag(ref)
        except ImageError:
            tag = None
        only_untag = tag in image.tags and len(image.tags) > 1
        user = self.images_in_use().get(image.id)
        if user and not only_untag:
            raise Conflict(f"image {ref} is used by container {user}: remove the container "
                           "first (provisioner-runtime rm)")
        return self.store.remove(ref)
