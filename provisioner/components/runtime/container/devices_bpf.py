"""Device control on cgroup v2: the eBPF cgroup-device program that v1's devices.allow list is.

cgroup v2 has no devices files; the kernel instead asks a BPF_PROG_TYPE_CGROUP_DEVICE program
attached to the cgroup whether a device node may be opened or made. This module turns the
same allowlist v1 uses (cgroups.DEVICE_ALLOWLIST, "c 1:3 rwm" rules) into such a program, loads
it with bpf(2) and attaches it to a cgroup directory. Anything not allowed is refused (EPERM).

The program is a straight list of rule blocks on the context {access_type, major, minor}
(access_type = access << 16 | type): a block jumps to the next one as soon as a field does not
match, and returns 1 (allow) when all match; the end returns 0 (deny). Runs in the shim (light
imports: ctypes, os, struct).
"""

import ctypes
import os
import struct

# struct bpf_cgroup_dev_ctx and its constants (<linux/bpf.h>)
DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4
_TYPES = {"b": DEV_BLOCK, "c": DEV_CHAR, "a": None}
_ACCESS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}

# instruction opcodes used (class | size/op | source)
_LDX_W = 0x61          # dst = *(u32 *)(src + off)
_MOV64_K = 0xB7        # dst = imm
_MOV64_X = 0xBF        # dst = src
_AND32_K = 0x54        # dst &= imm
_RSH32_K = 0x74        # dst >>= imm
_JNE_K = 0x55          # if dst != imm: pc += off
_EXIT = 0x95

PROG_TYPE_CGROUP_DEVICE = 15
ATTACH_CGROUP_DEVICE = 6
_BPF_PROG_LOAD = 5
_BPF_PROG_ATTACH = 8
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def parse_rule(rule: str) -> tuple[int | None, int | None, int | None, int]:
    """"c 1:3 rwm" -> (type, major, minor, access mask); None = any ("a", "*")."""
    kind, numbers, access = rule.split()
    major, minor = numbers.split(":")
    mask = 0
    for letter in access:
        mask |= _ACCESS[letter]
    return (_TYPES[kind], None if major == "*" else int(major),
            None if minor == "*" else int(minor), mask)


def program(rules) -> bytes:
    """The instructions allowing exactly `rules` (strings as v1's devices.allow takes)."""
    # r2 = type, r3 = access, r4 = major, r5 = minor
    code = [_insn(_LDX_W, 2, 1, 0), _insn(_MOV64_X, 3, 2), _insn(_AND32_K, 2, imm=0xFFFF),
            _insn(_RSH32_K, 3, imm=16), _insn(_LDX_W, 4, 1, 4), _insn(_LDX_W, 5, 1, 8)]
    for rule in rules:
        kind, major, minor, mask = parse_rule(rule)
        checks = []     # (register, value) pairs that must be equal; -1 marks the access check
        if kind is not None:
            checks.append((2, kind))
        checks.append((-1, mask))
        if major is not None:
            checks.append((4, major))
        if minor is not None:
            checks.append((5, minor))
        block: list[tuple] = []
        for register, value in checks:
            if register == -1:      # any access bit outside the rule's -> not this rule
                block += [(_MOV64_X, 6, 3, 0, 0), (_AND32_K, 6, 0, 0, ~value & 0xFFFF),
                          (_JNE_K, 6, 0, "next", 0)]
            else:
                block.append((_JNE_K, register, 0, "next", value))
        block += [(_MOV64_K, 0, 0, 0, 1), (_EXIT, 0, 0, 0, 0)]
        for index, (op, dst, src, off, imm) in enumerate(block):
            skip = len(block) - index - 1 if off == "next" else off
            code.append(_insn(op, dst, src, skip, imm))
    code += [_insn(_MOV64_K, 0, imm=0), _insn(_EXIT)]
    return b"".join(code)


class _ProgLoad(ctypes.Structure):
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32),
                ("insns", ctypes.c_uint64), ("license", ctypes.c_uint64),
                ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32),
                ("prog_flags", ctypes.c_uint32), ("prog_name", ctypes.c_char * 16),
                ("prog_ifindex", ctypes.c_uint32), ("expected_attach_type", ctypes.c_uint32),
                ("_rest", ctypes.c_char * 64)]


class _ProgAttach(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32),
                ("replace_bpf_fd", ctypes.c_uint32), ("_rest", ctypes.c_char * 44)]


def _bpf(command: int, attr) -> int:
    number = _SYS_BPF.get(os.uname().machine)
    if number is None:
        raise OSError(38, f"bpf: unknown syscall number on {os.uname().machine}")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(ctypes.c_long(number), ctypes.c_int(command), ctypes.byref(attr),
                          ctypes.c_uint(ctypes.sizeof(attr)))
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"bpf({command}): {os.strerror(error)}")
    return result


def attach(cgroup_dir: str, rules) -> None:
    """Load the program for `rules` and attach it to the cgroup v2 directory; it stays
    attached (and enforced) for the cgroup's life."""
    code = program(rules)
    instructions = ctypes.create_string_buffer(code, len(code))
    license_text = ctypes.create_string_buffer(b"Apache-2.0")
    load = _ProgLoad(prog_type=PROG_TYPE_CGROUP_DEVICE, insn_cnt=len(code) // 8,
                     insns=ctypes.addressof(instructions),
                     license=ctypes.addressof(license_text),
                     prog_name=b"prt_devices", expected_attach_type=ATTACH_CGROUP_DEVICE)
    try:
        prog_fd = _bpf(_BPF_PROG_LOAD, load)
    except OSError as exc:
        # again with the verifier's log, to say why
        log = ctypes.create_string_buffer(1 << 20)
        load.log_level, load.log_size, load.log_buf = 1, len(log), ctypes.addressof(log)
        try:
            _bpf(_BPF_PROG_LOAD, load)
        except OSError:
            pass
        detail = log.value.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise OSError(exc.errno, f"loading the device program: {exc.strerror} {detail[0]}") \
            from None
    try:
        cgroup_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _bpf(_BPF_PROG_ATTACH, _ProgAttach(target_fd=cgroup_fd, attach_bpf_fd=prog_fd,
                                               attach_type=ATTACH_CGROUP_DEVICE))
        finally:
            os.close(cgroup_fd)
    finally:
        os.close(prog_fd)
