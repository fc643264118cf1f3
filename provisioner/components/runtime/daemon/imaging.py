"""runtime/daemon: image operations behind the API: build, pull, push, save, load, tag, remove.

Long operations report progress lines through a callback; `events_of` turns a worker thread's
callbacks into an async stream the API writes out line by line. Builds run each RUN instruction
in a throwaway container (`run_build_step`) on the host network, its writes landing in the upper
directory the builder gave.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Callable

from ..container import api as core
from ..container.spec import ContainerSpec, Process
from ..images import ImageStore
from ..images.errors import ImageError
from ..images.reference import normalize_tag
from .errors import BadRequest, Conflict
from .logs import parse_line
from .names import new_id


def run_build_step(work_root: str, cgroup_parent: str, lower_dirs: list[str], upper_dir: str,
                   process: Process, output: Callable[[bytes], None]) -> int:
    """One RUN instruction: a container over `lower_dirs` writing into `upper_dir`; its output
    goes to `output` as it comes; returns the exit code."""
    step_id = f"build-{new_id()[:20]}"
    state_dir = os.path.join(work_root, step_id)
    os.makedirs(state_dir)
    # The core makes its overlay upper dir at state_dir/upper: point it at the builder's.
    os.symlink(upper_dir, os.path.join(state_dir, "upper"))
    log_path = os.path.join(state_dir, "container.log")
    spec = ContainerSpec(id=step_id, state_dir=state_dir, lower_dirs=lower_dirs, process=process,
                         hostname="buildkit", namespaces={"mount": None, "pid": None,
                                                           "uts": None, "ipc": None},
                         log_path=log_path, cgroup_parent=cgroup_parent)
    try:
        core.start(spec)
        position = 0
        while True:
            finished = core.state(state_dir).status != "running"
            position = _forward_log(log_path, position, output)
            if finished:
                position = _forward_log(log_path, position, output)
                break
            time.sleep(0.05)
        result = core.state(state_dir)
        return result.exit_code if result.exit_code is not None else 1
    finally:
        try:
            core.delete(state_dir)
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)


def _forward_log(log_path: str, position: int, output: Callable[[bytes], None]) -> int:
    try:
        with open(log_path, "rb") as source:
            source.seek(position)
            data = source.read()
    except FileNotFoundError:
        return position
    complete = data.rfind(b"\n") + 1
    for line in data[:complete].splitlines():
        entry = parse_line(line)
        if entry is not None:
            output(entry.data)
    return position + complete


async def events_of(work: Callable[[Callable[[str], None]], dict]) -> AsyncIterator[dict]:
    """Run `work(progress)` in a thread; yield {"progress": line} per call, then the dict it
    returns as {"result": ...}; its exception is raised here after the lines before it."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def progress(line: str) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, ("progress", line))

    def run() -> None:
        try:
            result = work(progress)
            loop.call_soon_threadsafe(queue.put_nowait, ("result", result))
        except BaseException as error:       # noqa: BLE001 - carried over to the event loop
            loop.call_soon_threadsafe(queue.put_nowait, ("error", error))

    task = loop.run_in_executor(None, run)
    try:
        while True:
            kind, value = await queue.get()
            if kind == "progress":
                yield {"progress": value}
            elif kind == "result":
                yield {"result": value}
                return
            else:
                raise value
    finally:
        await task


class ImageOperations:
    def __init__(self, store: ImageStore, root: str, cgroup_parent: str,
                 images_in_use: Callable[[], dict[str, str]]):
        self.store = store
        self.work_root = os.path.join(root, "tmp")
        os.makedirs(self.work_root, exist_ok=True)
        self.cgroup_parent = cgroup_parent
        self.images_in_use = images_in_use     # image id -> name of a container using it

    def temp_dir(self) -> str:
        return tempfile.mkdtemp(dir=self.work_root)

    async def build(self, context_tar_path: str, tags: list[str], dockerfile: str,
                    build_args: dict[str, str], no_cache: bool) -> AsyncIterator[dict]:
        from ..build.builder import Builder

        context_dir = self.temp_dir()

        def work(progress: Callable[[str], None]) -> dict:
            try:
                with tarfile.open(context_tar_path) as archive:
                    archive.extractall(context_dir, filter="data")
                builder = Builder(self.store, lambda lower, upper, process, output:
                                  run_build_step(self.work_root, self.cgroup_parent, lower,
                                                 upper, process, output))
                options = {"no_cache": True} if no_cache else {}
                image = builder.build(context_dir, dockerfile=dockerfile, tags=tags,
                                      build_args=build_args, progress=progress, **options)
                return {"id": image.id, "tags": image.tags}
            except tarfile.TarError as error:
                raise BadRequest(f"the build context is not a readable tar ({error})") from None
            finally:
                shutil.rmtree(context_dir, ignore_errors=True)

        async for event in events_of(work):
            yield event

    async def pull(self, ref: str, insecure: bool) -> AsyncIterator[dict]:
        from ..images.registry import RegistryClient

        async for event in self._registry_events(
                lambda progress: RegistryClient(self.store, progress=progress).pull(ref, insecure),
                lambda image: {"id": image.id, "digest": image.digest, "tags": image.tags}):
            yield event

    async def push(self, ref: str, insecure: bool) -> AsyncIterator[dict]:
        from ..images.registry import RegistryClient

        self.store.resolve(ref)
        async for event in self._registry_events(
                lambda progress: RegistryClient(self.store, progress=progress).push(ref, insecure),
                lambda digest: {"digest": digest, "ref": ref}):
            yield event

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
