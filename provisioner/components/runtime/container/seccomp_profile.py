"""Seccomp profiles in the OCI / Docker JSON format: checked, then reduced to the numbers the
container init hands to libseccomp (seccomp.install).

A process's `seccomp` setting (spec.Process.seccomp) is "runtime/default" (the built-in profile,
seccomp_default.PROFILE), "unconfined", or a profile object:

  {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
   "architectures": ["SCMP_ARCH_X86_64"]            (OCI) or
   "archMap": [{"architecture": ..., "subArchitectures": [...]}],       (Docker)
   "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
   "syscalls": [{"names": [...], "action": ..., "errnoRet": N,
                 "args": [{"index": 0, "value": N, "valueTwo": N, "op": "SCMP_CMP_EQ"}],
                 "includes": {"caps": [...], "arches": [...], "minKernel": "4.8"},
                 "excludes": {...}}]}

As Docker and runc do, names this kernel's libseccomp does not know are skipped, and a rule's
includes/excludes are decided against the process's capabilities, the machine's architecture
and the running kernel. Every other mistake raises ProfileError naming the field.
"""

from __future__ import annotations

import json
import os
import re

from . import caps, seccomp
from .seccomp_default import PROFILE as DEFAULT_PROFILE

RUNTIME_DEFAULT = "runtime/default"
UNCONFINED = "unconfined"
EPERM = 1

_ACTIONS = {
    "SCMP_ACT_KILL": seccomp.ACT_KILL_THREAD, "SCMP_ACT_KILL_THREAD": seccomp.ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": seccomp.ACT_KILL_PROCESS, "SCMP_ACT_TRAP": seccomp.ACT_TRAP,
    "SCMP_ACT_ERRNO": seccomp.ACT_ERRNO, "SCMP_ACT_TRACE": seccomp.ACT_TRACE,
    "SCMP_ACT_LOG": seccomp.ACT_LOG, "SCMP_ACT_ALLOW": seccomp.ACT_ALLOW,
}
_WITH_ERRNO = {"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"}
_OPERATORS = {
    "SCMP_CMP_NE": seccomp.CMP_NE, "SCMP_CMP_LT": seccomp.CMP_LT, "SCMP_CMP_LE": seccomp.CMP_LE,
    "SCMP_CMP_EQ": seccomp.CMP_EQ, "SCMP_CMP_GE": seccomp.CMP_GE, "SCMP_CMP_GT": seccomp.CMP_GT,
    "SCMP_CMP_MASKED_EQ": seccomp.CMP_MASKED_EQ,
}
_FLAGS = {"SECCOMP_FILTER_FLAG_LOG": seccomp.FILTER_FLAG_LOG,
          "SECCOMP_FILTER_FLAG_SPEC_ALLOW": seccomp.FILTER_FLAG_SPEC_ALLOW,
          "SECCOMP_FILTER_FLAG_TSYNC": 0}     # the init is single-threaded: nothing to sync
# built programs by (profile, capabilities): a daemon builds each distinct filter once
_CACHE: dict[tuple, dict] = {}
_CACHE_LIMIT = 64
# Go's architecture names (Docker's includes.arches) -> uname's
_GO_ARCHES = {"amd64": "x86_64", "386": "i686", "arm64": "aarch64", "arm": "armv7l",
              "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


class ProfileError(ValueError):
    """A malformed profile; the message names the field and what is wrong."""


def describe(setting) -> str:
    """How inspect shows a setting: "runtime/default", "unconfined" or "custom"."""
    return setting if isinstance(setting, str) else "custom"


def check_setting(setting) -> None:
    """Refuse what is neither a known name nor a profile object (before compile)."""
    if setting in (RUNTIME_DEFAULT, UNCONFINED) or isinstance(setting, dict):
        return
    raise ProfileError(f"invalid seccomp setting {setting!r}: use {RUNTIME_DEFAULT!r}, "
                       f"{UNCONFINED!r} or a profile (a JSON object in the OCI/Docker format)")


def compile_setting(setting, capabilities: list[str] | None) -> dict | None:
    """The compiled filter for a process (None for unconfined; see seccomp.py for its shape).
    `capabilities` are the process's (None: the default set), deciding includes/excludes.caps."""
    check_setting(setting)
    if setting == UNCONFINED:
        return None
    profile = DEFAULT_PROFILE if setting == RUNTIME_DEFAULT else setting
    held = {"CAP_" + name.upper().removeprefix("CAP_")
            for name in (caps.DEFAULT_CAPABILITIES if capabilities is None else capabilities)}
    key = (json.dumps(profile, sort_keys=True), tuple(sorted(held)))
    if key in _CACHE:
        return _CACHE[key]
    try:
        description = _compile(profile, held)
        compiled = {"bpf": seccomp.build_bpf(description).hex(), "flags": description["flags"],
                    "syscall": seccomp.syscall_number("seccomp")}
    except seccomp.SeccompError as exc:
        raise ProfileError(str(exc)) from None
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = compiled
    return compiled


def _compile(profile: dict, held: set[str]) -> dict:
    if not isinstance(profile, dict):
        raise ProfileError("seccomp profile must be a JSON object")
    default = _action(profile.get("defaultAction"), profile.get("defaultErrnoRet"),
                      "defaultAction")
    flags = 0
    for flag in _strings(profile.get("flags"), "flags"):
        if flag not in _FLAGS:
            raise ProfileError(f"seccomp profile: flags: unknown flag {flag!r}; known: "
                               f"{', '.join(_FLAGS)}")
        flags |= _FLAGS[flag]
    rules = []
    for index, entry in enumerate(_list(profile.get("syscalls"), "syscalls")):
        where = f"syscalls[{index}]"
        if not isinstance(entry, dict):
            raise ProfileError(f"seccomp profile: {where} must be an object")
        names = _strings(entry.get("names"), f"{where}.names")
        if entry.get("name") is not None:      # the older single-name spelling
            names.append(_string(entry["name"], f"{where}.name"))
        if not names:
            raise ProfileError(f"seccomp profile: {where} names no syscall (give \"names\")")
        action = _action(entry.get("action"), entry.get("errnoRet"), f"{where}.action")
        conditions = [_condition(arg, f"{where}.args[{n}]")
                      for n, arg in enumerate(_list(entry.get("args"), f"{where}.args"))]
        if not _applies(entry, held, where) or action == default:
            continue
        for name in names:
            number = seccomp.syscall_number(name)
            if number is not None:      # unknown to this libseccomp: skipped, as runc does
                rules.append([action, number, conditions])
    return {"default_action": default, "arches": _arches(profile), "rules": rules,
            "flags": flags}


def _action(name, errno_ret, where: str) -> int:
    if name not in _ACTIONS:
        raise ProfileError(f"seccomp profile: {where} {name!r} is not an action; use one of "
                           f"{', '.join(_ACTIONS)}")
    if errno_ret is not None and (not isinstance(errno_ret, int) or isinstance(errno_ret, bool)
                                  or not 0 <= errno_ret < 4096):
        raise ProfileError(f"seccomp profile: the errno of {where} must be a number from 0 to "
                           f"4095, not {errno_ret!r}")
    if name in _WITH_ERRNO:
        return _ACTIONS[name] | (EPERM if errno_ret is None else errno_ret)
    return _ACTIONS[name]


def _condition(arg, where: str) -> list[int]:
    if not isinstance(arg, dict):
        raise ProfileError(f"seccomp profile: {where} must be an object with index, value, op")
    index = arg.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= 5:
        raise ProfileError(f"seccomp profile: {where}.index must be 0 to 5, not {index!r}")
    if arg.get("op") not in _OPERATORS:
        raise ProfileError(f"seccomp profile: {where}.op {arg.get('op')!r} is not an operator; "
                           f"use one of {', '.join(_OPERATORS)}")
    values = []
    for key in ("value", "valueTwo"):
        value = arg.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
            raise ProfileError(f"seccomp profile: {where}.{key} must be an unsigned 64-bit "
                               f"number, not {value!r}")
        values.append(value)
    return [index, _OPERATORS[arg["op"]], *values]


def _applies(entry: dict, held: set[str], where: str) -> bool:
    """Docker's rule: every included cap held, arch listed, kernel new enough; no excluded cap
    held, kernel older than an excluded minKernel."""
    includes = entry.get("includes") or {}
    excludes = entry.get("excludes") or {}
    for key, block in (("includes", includes), ("excludes", excludes)):
        if not isinstance(block, dict):
            raise ProfileError(f"seccomp profile: {where}.{key} must be an object")
    machine = os.uname().machine
    if any(cap.upper() not in held for cap in _strings(includes.get("caps"), f"{where}.includes.caps")):
        return False
    arches = _strings(includes.get("arches"), f"{where}.includes.arches")
    if arches and machine not in {_GO_ARCHES.get(arch, arch) for arch in arches}:
        return False
    if includes.get("minKernel") and _kernel() < _version(includes["minKernel"], where):
        return False
    if any(cap.upper() in held for cap in _strings(excludes.get("caps"), f"{where}.excludes.caps")):
        return False
    excluded_arches = _strings(excludes.get("arches"), f"{where}.excludes.arches")
    if machine in {_GO_ARCHES.get(arch, arch) for arch in excluded_arches}:
        return False
    if excludes.get("minKernel") and _kernel() >= _version(excludes["minKernel"], where):
        return False
    return True


def _arches(profile: dict) -> list[int]:
    """The native architecture plus what the profile names for it (archMap's sub-architectures
    of the native one, or OCI's flat list)."""
    native = seccomp.native_arch()
    names = _strings(profile.get("architectures"), "architectures")
    for index, entry in enumerate(_list(profile.get("archMap"), "archMap")):
        if not isinstance(entry, dict):
            raise ProfileError(f"seccomp profile: archMap[{index}] must be an object")
        main = _string(entry.get("architecture"), f"archMap[{index}].architecture")
        if _arch(main, f"archMap[{index}].architecture") == native:
            names += _strings(entry.get("subArchitectures"), f"archMap[{index}].subArchitectures")
    tokens = [native]
    for name in names:
        token = _arch(name, "architectures")
        if token not in tokens:
            tokens.append(token)
    return tokens


def _arch(name: str, where: str) -> int:
    token = seccomp.arch_token(name.removeprefix("SCMP_ARCH_").lower())
    if token is None:
        raise ProfileError(f"seccomp profile: {where}: unknown architecture {name!r} (use names "
                           "such as SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64)")
    return token


def _kernel() -> tuple[int, ...]:
    return _version(os.uname().release, "the kernel release")


def _version(text, where: str) -> tuple[int, ...]:
    match = re.match(r"^(\d+)\.(\d+)", str(text))
    if not match:
        raise ProfileError(f"seccomp profile: {where}: minKernel {text!r} is not a version "
                           "such as 4.8")
    return int(match.group(1)), int(match.group(2))


def _list(value, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProfileError(f"seccomp profile: {where} must be a list")
    return value


def _string(value, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ProfileError(f"seccomp profile: {where} must be a non-empty string")
    return value


def _strings(value, where: str) -> list[str]:
    return [_string(item, f"{where}[{n}]") for n, item in enumerate(_list(value, where))]
