"""A thin ctypes layer over libseccomp (libseccomp.so.2, Debian's libseccomp2): build a filter
from a compiled profile and load it into the calling thread, right before execve.

The profile is parsed, checked and reduced to plain numbers by seccomp_profile.compile in the
daemon or the api; this module is what the container init (launcher, under the shim's light
imports) runs, so it imports only ctypes and os. libseccomp does the BPF: nothing here assembles
filter code by hand.

A compiled filter is a dict (marshal- and JSON-friendly):
  {"default_action": int, "arches": [arch token, ...], "no_new_privs": bool,
   "rules": [[action, syscall number, [[arg index, op, datum_a, datum_b], ...]], ...],
   "attributes": [[attribute, value], ...]}
"""

import ctypes
import os

LIBRARY = "libseccomp.so.2"

# actions, as <seccomp.h> numbers them
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000          # | errno
ACT_TRACE = 0x7FF00000          # | message
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000

# comparison operators (enum scmp_compare)
CMP_NE, CMP_LT, CMP_LE, CMP_EQ, CMP_GE, CMP_GT, CMP_MASKED_EQ = range(1, 8)

# filter attributes (enum scmp_filter_attr)
ATTR_CTL_NNP = 3        # libseccomp sets no_new_privs itself at load unless told not to
ATTR_CTL_LOG = 6
ATTR_CTL_SSB = 7

_NR_SCMP_ERROR = -1
_EEXIST = 17
_EACCES = 13


class SeccompError(Exception):
    """libseccomp missing or refusing the filter, phrased for the user."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


_lib = None


def library():
    """libseccomp, loaded once (SeccompError naming the package when it is absent)."""
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL(LIBRARY, use_errno=True)
        except OSError:
            raise SeccompError(f"{LIBRARY} is not installed: install libseccomp2 (apt-get install "
                               "libseccomp2), or run with seccomp=unconfined") from None
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_arch_native.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        lib.seccomp_load.argtypes = [ctypes.c_void_p]
        _lib = lib
    return _lib


def arch_token(name: str) -> int | None:
    """"x86_64", "x86", "aarch64"... -> libseccomp's token, None when unknown."""
    token = library().seccomp_arch_resolve_name(name.encode())
    return token or None


def native_arch() -> int:
    return library().seccomp_arch_native()


def syscall_number(name: str) -> int | None:
    """The syscall's number on this machine's architecture (negative pseudo-numbers for calls
    only other architectures have, which libseccomp maps per arch); None when unknown."""
    number = library().seccomp_syscall_resolve_name(name.encode())
    return None if number == _NR_SCMP_ERROR else number


def _fail(result: int, what: str) -> None:
    if result < 0:
        raise SeccompError(f"seccomp: {what}: {os.strerror(-result)}")


def install(compiled: dict) -> None:
    """Build the filter and load it into this thread (and so into what it execs)."""
    lib = library()
    ctx = lib.seccomp_init(compiled["default_action"])
    if not ctx:
        raise SeccompError("seccomp: cannot create a filter (seccomp_init failed)")
    try:
        for arch in compiled["arches"]:
            result = lib.seccomp_arch_add(ctx, arch)
            if result != -_EEXIST:      # the native arch is always present already
                _fail(result, f"adding architecture {arch:#x}")
        if not compiled.get("no_new_privs", True):
            _fail(lib.seccomp_attr_set(ctx, ATTR_CTL_NNP, 0), "clearing the no_new_privs attribute")
        for attribute, value in compiled.get("attributes", ()):
            _fail(lib.seccomp_attr_set(ctx, attribute, value), f"setting attribute {attribute}")
        for action, number, conditions in compiled["rules"]:
            array = (_ArgCmp * len(conditions))(*(_ArgCmp(*c) for c in conditions))
            result = lib.seccomp_rule_add_array(ctx, action, number, len(conditions), array)
            if result != -_EACCES:      # a rule equal to the default action: nothing to add
                _fail(result, f"adding a rule for syscall {number}")
        _fail(lib.seccomp_load(ctx), "loading the filter")
    finally:
        lib.seccomp_release(ctx)
