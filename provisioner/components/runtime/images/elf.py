"""runtime/images: just enough ELF reading to find a binary's interpreter and shared libraries.

bootstrap.py uses it to copy the host's python3 with the libraries it needs (DT_NEEDED of the
binary and of its extension modules, transitively), without running `ldd`.
"""

from __future__ import annotations

import os
import struct

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB = 0, 1, 5
LIBRARY_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
                "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib")


def read_dynamic(path: str) -> tuple[str | None, list[str]]:
    """(interpreter, DT_NEEDED names) of a 64-bit little-endian ELF file; (None, []) otherwise."""
    with open(path, "rb") as elf:
        data = elf.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None, []
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads, dynamic, interpreter = [], None, None
    for index in range(phnum):
        kind, _flags, offset, vaddr, _paddr, filesz, _memsz, _align = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + index * phentsize)
        if kind == PT_LOAD:
            loads.append((vaddr, offset, filesz))
        elif kind == PT_DYNAMIC:
            dynamic = (offset, filesz)
        elif kind == PT_INTERP:
            interpreter = data[offset:offset + filesz].rstrip(b"\0").decode()
    if dynamic is None:
        return interpreter, []
    needed_offsets, strtab_vaddr = [], None
    for position in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, value = struct.unpack_from("<qQ", data, position)
        if tag == DT_NULL:
            break
        if tag == DT_NEEDED:
            needed_offsets.append(value)
        elif tag == DT_STRTAB:
            strtab_vaddr = value
    if strtab_vaddr is None:
        return interpreter, []
    strtab = next((offset + strtab_vaddr - vaddr for vaddr, offset, size in loads
                   if vaddr <= strtab_vaddr < vaddr + size), strtab_vaddr)
    names = []
    for offset in needed_offsets:
        end = data.index(b"\0", strtab + offset)
        names.append(data[strtab + offset:end].decode())
    return interpreter, names


def find_library(name: str) -> str | None:
    for directory in LIBRARY_DIRS:
        candidate = os.path.join(directory, name)
        if os.path.exists(candidate):
            return candidate
    return None


def library_closure(binaries: list[str]) -> dict[str, str]:
    """Every library the binaries need, transitively: {path in the image: host file}."""
    result: dict[str, str] = {}
    pending = list(binaries)
    seen: set[str] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        interpreter, needed = read_dynamic(path)
        if interpreter and interpreter not in result:
            result[interpreter] = os.path.realpath(interpreter)
        for name in needed:
            found = find_library(name)
            if found is None:
                raise FileNotFoundError(f"shared library {name} needed by {path} is not on "
                                        f"this host")
            if found not in result:
                result[found] = os.path.realpath(found)
                pending.append(found)
    return result
