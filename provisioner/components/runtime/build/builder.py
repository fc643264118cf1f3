"""runtime/build: Dockerfile -> image, one step at a time, with a build cache.

Each step's result (the image config so far and its layers) is cached under
`<root>/images/build-cache/<key>.json`, the key being the sha256 of the parent step's key, the
instruction with variables substituted, and its inputs (the digest of copied files, the build
args a RUN sees). An unchanged rebuild thus hits the cache at every step and yields the same
image id. RUN, COPY, ADD (and WORKDIR when it creates the directory) add one layer each; the
other instructions change the config only.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable

from ..container.spec import Process
from ..images.errors import ImageError
from ..images.layers import diff_upper_dir
from ..images.store import Image, ImageStore, Layer
from . import steps
from .context import BuildContext, ContextError
from .dockerfile import Dockerfile, DockerfileError, Instruction, parse

# (lower_dirs, upper_dir, process, output) -> exit code; see the runtime README.
RunStep = Callable[[list[str], str, Process, Callable[[bytes], None]], int]


class BuildError(ImageError):
    """A build failure; the message names the Dockerfile line when one is to blame."""


class Builder:
    def __init__(self, store: ImageStore, run_step: RunStep):
        self.store = store
        self.run_step = run_step
        self.cache_dir = os.path.join(store.root, "build-cache")
        os.makedirs(self.cache_dir, exist_ok=True)

    def build(self, context_dir: str, dockerfile: str = "Dockerfile", tags: list[str] = (),
              build_args: dict[str, str] | None = None,
              progress: Callable[[str], None] = print, no_cache: bool = False) -> Image:
        """Build the Dockerfile of `context_dir`; `no_cache` runs every step (and refreshes
        the cache entries)."""
        path = dockerfile if os.path.isabs(dockerfile) else os.path.join(context_dir, dockerfile)
        try:
            with open(path, encoding="utf-8") as source:
                parsed = parse(source.read(), dockerfile)
        except FileNotFoundError:
            raise BuildError(f"no Dockerfile at {path}; pass -f or add one to the context") \
                from None
        except DockerfileError as error:
            raise BuildError(str(error)) from None
        work = tempfile.mkdtemp(dir=self.store.blobs.tmp_dir, prefix="build-")
        try:
            state = _BuildState(parsed, dict(build_args or {}), BuildContext(context_dir), work,
                                self.store)
            total = len(parsed.instructions)
            for number, instruction in enumerate(parsed.instructions, 1):
                progress(f"Step {number}/{total} : {instruction.text}")
                try:
                    self._step(state, instruction, progress, no_cache)
                except BuildError:
                    raise
                except DockerfileError as error:
                    raise BuildError(str(error)) from None
                except (ContextError, ValueError, ImageError) as error:
                    raise BuildError(str(parsed.error(instruction, str(error)))) from None
            if not state.started:
                raise BuildError(f"{dockerfile}: no FROM instruction")
            unused = set(build_args or {}) - state.declared_args
            if unused:
                progress(f"[Warning] build args not consumed by the Dockerfile: "
                         f"{', '.join(sorted(unused))}")
            image = self.store.commit(state.config, state.layers, list(tags))
            progress(f"Successfully built {image.short_id}")
            for tag in image.tags:
                progress(f"Successfully tagged {tag}")
            return image
        finally:
            shutil.rmtree(work, ignore_errors=True)

    # ------------------------------------------------------------------ steps

    def _step(self, state: _BuildState, instruction: Instruction,
              progress: Callable[[str], None], no_cache: bool = False) -> None:
        keyword = instruction.keyword
        if keyword == "ARG":
            steps.declare_arg(state, instruction)
            return
        if keyword == "FROM":
            steps.start_from(state, instruction, self.store)
            return
        if not state.started:
            raise state.dockerfile.error(instruction, f"{keyword} before FROM; start with FROM")
        text, inputs = steps.describe(state, instruction)
        key = _cache_key(state.key, text, inputs)
        cached = None if no_cache else self._cache_get(key)
        if cached is not None:
            state.config, state.layers = cached
            state.key = key
            progress(" ---> Using cache")
            return
        changed = steps.apply_config(state, instruction)
        layer = None
        if keyword in ("RUN", "COPY", "ADD") or (keyword == "WORKDIR" and changed):
            stage = tempfile.mkdtemp(dir=state.work, prefix="upper-")
            if keyword == "RUN":
                self._run(state, instruction, stage, progress)
            elif keyword == "WORKDIR":
                steps.make_workdir(state, self.store, stage)
            else:
                steps.copy_sources(state, instruction, self.store, stage)
            tar = stage + ".tar"
            diff_upper_dir(stage, tar)
            layer = self.store.add_layer(tar)
            os.unlink(tar)
            shutil.rmtree(stage)
            state.layers = state.layers + [layer]
        history = {"created": _now(), "created_by": text}
        if layer is None:
            history["empty_layer"] = True
        state.config["created"] = history["created"]
        state.config["history"] = list(state.config.get("history", [])) + [history]
        state.key = key
        self._cache_put(key, state.config, state.layers)
        progress(f" ---> {layer.digest[7:19] if layer else 'config'}")

    def _run(self, state: _BuildState, instruction: Instruction, upper: str,
             progress: Callable[[str], None]) -> None:
        process = steps.run_process(state, instruction)
        lower_dirs = state.store_layer_dirs()
        pending = bytearray()

        def output(chunk: bytes) -> None:
            pending.extend(chunk)
            while b"\n" in pending:
                line, _, rest = bytes(pending).partition(b"\n")
                pending[:] = rest
                progress(line.decode(errors="replace"))

        code = self.run_step(lower_dirs, upper, process, output)
        if pending:
            progress(pending.decode(errors="replace"))
        if code != 0:
            raise BuildError(str(state.dockerfile.error(
                instruction, f"RUN {instruction.arguments} failed with exit code {code}")))
        steps.drop_runtime_mountpoints(upper, lower_dirs)

    # ------------------------------------------------------------------ cache

    def _cache_get(self, key: str) -> tuple[dict, list[Layer]] | None:
        try:
            with open(os.path.join(self.cache_dir, key + ".json")) as entry:
                data = json.load(entry)
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        layers = [Layer(**layer) for layer in data["layers"]]
        if not all(self.store.blobs.exists(layer.digest) for layer in layers):
            return None      # a layer was removed since: build the step again
        return data["config"], layers

    def _cache_put(self, key: str, config: dict, layers: list[Layer]) -> None:
        document = {"config": config, "layers": [layer.__dict__ for layer in layers]}
        tmp_path = os.path.join(self.cache_dir, f".{key}.tmp")
        with open(tmp_path, "w") as out:
            json.dump(document, out)
        os.replace(tmp_path, os.path.join(self.cache_dir, key + ".json"))


class _BuildState:
    """What the steps so far have made: config, layers, variables, and the cache key."""

    def __init__(self, dockerfile: Dockerfile, build_args: dict[str, str],
                 context: BuildContext, work: str, store: ImageStore):
        self.dockerfile = dockerfile
        self.store = store
        self.build_args = build_args
        self.context = context
        self.work = work
        self.started = False
        self.config: dict = {}
        self.layers: list[Layer] = []
        self.key = ""
        self.args: dict[str, str] = {}           # ARG values in scope
        self.global_args: dict[str, str] = {}    # ARGs before FROM
        self.declared_args: set[str] = set()
        self.cmd_set = False      # CMD given in this Dockerfile (an ENTRYPOINT keeps it)

    def store_layer_dirs(self) -> list[str]:
        return self.store.layer_dirs_of(self.layers)

    def env(self) -> dict[str, str]:
        """Variables for substitution: ARGs, overridden by the image's ENV."""
        values = dict(self.args)
        for item in self.config.get("config", {}).get("Env", []) or []:
            name, _, value = item.partition("=")
            values[name] = value
        return values


def _cache_key(parent: str, text: str, inputs: dict) -> str:
    material = json.dumps([parent, text, inputs], sort_keys=True).encode()
    return hashlib.sha256(material).hexdigest()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
