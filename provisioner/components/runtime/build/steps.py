"""runtime/build: what each Dockerfile instruction does to the build state (the builder's helper).

`describe` gives a step's cache text and inputs, `apply_config` its effect on the image config;
`copy_sources`, `make_workdir` and `run_process` prepare the steps that add a layer.
"""

from __future__ import annotations

import copy
import os
import stat

from ..container.spec import Process
from ..images.errors import ImageError
from ..images.store import ImageStore
from .context import ContextError, copy_into, extract_archive, is_local_archive
from .dockerfile import Instruction, expand, key_values, split_words

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UNSUPPORTED = {
    "ONBUILD": "ONBUILD is not supported by this builder",
    "HEALTHCHECK": "HEALTHCHECK is not supported by this runtime",
}
COPY_FLAGS = {"chown", "chmod"}
RUNTIME_MOUNTPOINTS = ("proc", "sys", "dev")


def _config(state) -> dict:
    return state.config.setdefault("config", {})


def _words(state, instruction: Instruction) -> list[str]:
    env = state.env()
    if instruction.exec_form is not None:
        return [expand(word, env, state.dockerfile.escape) for word in instruction.exec_form]
    return split_words(instruction.arguments, env, state.dockerfile.escape)


# ---------------------------------------------------------------------------------- FROM, ARG


def declare_arg(state, instruction: Instruction) -> None:
    env = dict(state.global_args) if not state.started else state.env()
    words = split_words(instruction.arguments, env, state.dockerfile.escape)
    for word in words:
        name, equals, default = word.partition("=")
        if not name:
            raise state.dockerfile.error(instruction, f"ARG {word!r} has no name")
        state.declared_args.add(name)
        if not state.started:
            state.global_args[name] = state.build_args.get(name, default if equals else "")
            continue
        inherited = state.global_args.get(name) if not equals else default
        if name in state.build_args:
            state.args[name] = state.build_args[name]
        elif inherited is not None and (equals or name in state.global_args):
            state.args[name] = inherited


def start_from(state, instruction: Instruction, store: ImageStore) -> None:
    if state.started:
        raise state.dockerfile.error(
            instruction, "multi-stage builds (a second FROM) are not supported; "
                         "build the stages as separate images")
    if instruction.flags:
        raise state.dockerfile.error(instruction, "FROM flags (--platform) are not supported")
    words = split_words(instruction.arguments, state.global_args, state.dockerfile.escape)
    if len(words) == 3 and words[1].lower() == "as":
        words = words[:1]           # a single named stage is fine
    if len(words) != 1:
        raise state.dockerfile.error(instruction, "FROM takes one image (FROM image [AS name])")
    state.started = True
    if words[0] == "scratch":
        state.config, state.layers, state.key = {"config": {}}, [], "scratch"
        return
    try:
        base = store.resolve(words[0])
    except ImageError as error:
        raise state.dockerfile.error(instruction, str(error)) from None
    state.config = copy.deepcopy(base.config)
    state.config.pop("rootfs", None)
    state.layers, state.key = list(base.layers), base.id
    state.cmd_set = False


# ---------------------------------------------------------------------------------- config


def describe(state, instruction: Instruction) -> tuple[str, dict]:
    """The step's cache text (variables substituted) and inputs; rejects what cannot run."""
    keyword = instruction.keyword
    if keyword in UNSUPPORTED:
        raise ValueError(UNSUPPORTED[keyword])
    if keyword == "RUN":
        if instruction.flags:
            raise ValueError(f"RUN flags ({', '.join(instruction.flags)}) are not supported")
        return instruction.text, {"args": dict(sorted(state.args.items()))}
    if keyword in ("COPY", "ADD"):
        sources, _ = _copy_operands(state, instruction)
        found = [item for source in sources for item in state.context.find(source)]
        return (f"{keyword} {instruction.flags} {_words(state, instruction)}",
                {"files": state.context.digest(found)})
    if keyword == "CMD":
        state.cmd_set = True
    return f"{keyword} {_words(state, instruction) if keyword != 'ENV' else instruction.text} " \
           f"{sorted(state.env().items()) if keyword == 'ENV' else ''}", {}


def apply_config(state, instruction: Instruction) -> bool:
    """Change the config for `instruction`; True when WORKDIR must create its directory."""
    keyword, config = instruction.keyword, _config(state)
    escape = state.dockerfile.escape
    if keyword == "ENV":
        env = [item for item in config.get("Env") or []]
        for name, value in key_values(instruction, state.env(), escape, legacy_allowed=True):
            env = [item for item in env if item.partition("=")[0] != name] + [f"{name}={value}"]
        config["Env"] = env
    elif keyword == "LABEL":
        labels = dict(config.get("Labels") or {})
        labels.update(key_values(instruction, state.env(), escape, legacy_allowed=False))
        config["Labels"] = labels
    elif keyword == "MAINTAINER":
        state.config["author"] = instruction.arguments
    elif keyword == "EXPOSE":
        ports = dict(config.get("ExposedPorts") or {})
        for word in _words(state, instruction):
            number, _, protocol = word.partition("/")
            if not number.isdigit() or protocol not in ("", "tcp", "udp", "sctp"):
                raise ValueError(f"EXPOSE {word!r} is not a port (80 or 80/udp)")
            ports[f"{int(number)}/{protocol or 'tcp'}"] = {}
        config["ExposedPorts"] = ports
    elif keyword == "USER":
        words = _words(state, instruction)
        if len(words) != 1:
            raise ValueError("USER takes one user[:group]")
        config["User"] = words[0]
    elif keyword in ("CMD", "ENTRYPOINT"):
        command = _command(state, instruction)
        config["Cmd" if keyword == "CMD" else "Entrypoint"] = command
        if keyword == "ENTRYPOINT" and not getattr(state, "cmd_set", False):
            config["Cmd"] = None      # an inherited CMD does not apply to a new ENTRYPOINT
    elif keyword == "VOLUME":
        volumes = dict(config.get("Volumes") or {})
        volumes.update({word: {} for word in _words(state, instruction)})
        config["Volumes"] = volumes
    elif keyword == "STOPSIGNAL":
        config["StopSignal"] = _words(state, instruction)[0]
    elif keyword == "SHELL":
        if instruction.exec_form is None or not instruction.exec_form:
            raise ValueError('SHELL needs the JSON form, e.g. SHELL ["/bin/sh", "-c"]')
        config["Shell"] = instruction.exec_form
    elif keyword == "WORKDIR":
        words = _words(state, instruction)
        directory = os.path.normpath(os.path.join(config.get("WorkingDir") or "/", " ".join(words)))
        config["WorkingDir"] = directory
        return find_in_layers(state.store_layer_dirs(), directory) is None
    return False


def _command(state, instruction: Instruction) -> list[str]:
    if instruction.exec_form is not None:
        return list(instruction.exec_form)
    shell = _config(state).get("Shell") or ["/bin/sh", "-c"]
    return list(shell) + [instruction.arguments]


# ---------------------------------------------------------------------------------- layers


def run_process(state, instruction: Instruction) -> Process:
    config = _config(state)
    env = list(config.get("Env") or [])
    names = {item.partition("=")[0] for item in env}
    env += [f"{name}={value}" for name, value in sorted(state.args.items()) if name not in names]
    if "PATH" not in names and "PATH" not in state.args:
        env.append(DEFAULT_PATH)
    return Process(args=_command(state, instruction), env=env,
                   cwd=config.get("WorkingDir") or "/", user=config.get("User") or "0:0",
                   capabilities=None, no_new_privileges=True)


def make_workdir(state, store: ImageStore, stage: str) -> None:
    directory = _config(state)["WorkingDir"]
    _make_parents(state.store_layer_dirs(), stage, directory, include_self=True)


def copy_sources(state, instruction: Instruction, store: ImageStore, stage: str) -> None:
    sources, destination = _copy_operands(state, instruction)
    lower = state.store_layer_dirs()
    owner = _owner(lower, instruction.flags.get("chown"))
    chmod = _chmod(instruction.flags.get("chmod"))
    found = [item for source in sources for item in state.context.find(source)]
    workdir = _config(state).get("WorkingDir") or "/"
    target = os.path.normpath(os.path.join(workdir, destination))
    existing = find_in_layers(lower, target)
    into_dir = (destination.endswith("/") or len(found) > 1
                or (existing is not None and os.path.isdir(existing)))
    for source in found:
        is_dir = os.path.isdir(source.path) and not os.path.islink(source.path)
        if instruction.keyword == "ADD" and not is_dir and is_local_archive(source.path):
            _make_parents(lower, stage, target, include_self=True)
            extract_archive(source.path, os.path.join(stage, target.lstrip("/")),
                            f"ADD {source.rel}")
            continue
        path = target if is_dir or not into_dir else os.path.join(target,
                                                                  os.path.basename(source.path))
        _make_parents(lower, stage, path, include_self=is_dir)
        copy_into(state.context, source, os.path.join(stage, path.lstrip("/")), owner, chmod)


def _copy_operands(state, instruction: Instruction) -> tuple[list[str], str]:
    unknown = set(instruction.flags) - COPY_FLAGS
    if "from" in unknown:
        raise ValueError("COPY --from needs multi-stage builds, which are not supported")
    if unknown:
        raise ValueError(f"{instruction.keyword} flags {sorted(unknown)} are not supported")
    words = _words(state, instruction)
    if len(words) < 2:
        raise ValueError(f"{instruction.keyword} needs a source and a destination")
    for source in words[:-1]:
        if "://" in source or source.startswith("git@"):
            raise ValueError(f"{instruction.keyword} from a URL ({source}) is not supported; "
                             "download the file into the build context and ADD it from there")
    return words[:-1], words[-1]


def find_in_layers(layer_dirs: list[str], path: str) -> str | None:
    """The host path of `path` in the topmost layer that has it; None if absent or whited out."""
    rel = path.strip("/")
    if not rel:
        return layer_dirs[-1] if layer_dirs else None
    for layer in reversed(layer_dirs):
        candidate = os.path.join(layer, rel)
        if os.path.lexists(candidate):
            info = os.lstat(candidate)
            if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                return None
            return candidate
    return None


def _make_parents(lower: list[str], stage: str, path: str, include_self: bool) -> None:
    """Create `path`'s parents in the stage with the metadata they have in the image, so the
    layer does not change their owner or mode."""
    parts = path.strip("/").split("/")
    count = len(parts) if include_self else len(parts) - 1
    for index in range(1, count + 1):
        rel = "/".join(parts[:index])
        target = os.path.join(stage, rel)
        if os.path.isdir(target):
            continue
        os.mkdir(target)
        existing = find_in_layers(lower, rel)
        if existing is not None and os.path.isdir(existing):
            info = os.stat(existing)
            os.chown(target, info.st_uid, info.st_gid)
            os.chmod(target, stat.S_IMODE(info.st_mode))
        else:
            os.chmod(target, 0o755)


def _owner(lower: list[str], chown: str | None) -> tuple[int, int]:
    if not chown:
        return 0, 0
    user, _, group = chown.partition(":")
    uid = _lookup_id(lower, "/etc/passwd", user)
    if group:
        gid = _lookup_id(lower, "/etc/group", group)
    elif user.isdigit():
        gid = uid
    else:
        gid = _lookup_field(lower, "/etc/passwd", user, 3)
    return uid, gid


def _lookup_id(lower: list[str], table: str, name: str) -> int:
    return int(name) if name.isdigit() else _lookup_field(lower, table, name, 2)


def _lookup_field(lower: list[str], table: str, name: str, column: int) -> int:
    path = find_in_layers(lower, table)
    if path is not None and os.path.isfile(path):
        with open(path, encoding="utf-8", errors="replace") as entries:
            for line in entries:
                fields = line.strip().split(":")
                if len(fields) > column and fields[0] == name:
                    return int(fields[column])
    raise ContextError(f"--chown: no {name!r} in the image's {table}")


def _chmod(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value, 8)
    except ValueError:
        raise ValueError(f"--chmod={value} is not an octal mode") from None


def drop_runtime_mountpoints(upper: str, lower: list[str]) -> None:
    """Remove the empty /proc, /sys, /dev the container core created for the RUN step when the
    image lacks them: they are mount points, not part of what the step built."""
    for name in RUNTIME_MOUNTPOINTS:
        path = os.path.join(upper, name)
        if os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path) \
                and find_in_layers(lower, name) is None:
            os.rmdir(path)
