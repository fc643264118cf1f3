"""Resolve a process's user ("uid:gid", "uid", "name", "name:group") against the container's own
/etc/passwd and /etc/group, as Docker does; read after pivot_root, so paths are the container's.
"""



class ResolvedUser:
    """A plain class, not a dataclass: this module is on the shim's start-up path."""

    __slots__ = ("uid", "gid", "groups", "home")

    def __init__(self, uid: int, gid: int, groups: list[int], home: str):
        self.uid, self.gid, self.groups, self.home = uid, gid, groups, home


def _read_table(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip()
                    and not line.startswith("#")]
    except OSError:
        return []


def resolve(user: str) -> ResolvedUser:
    """Raise LookupError naming the user or group when a name is not in the container's files."""
    user = user or "0"
    name_part, _, group_part = user.partition(":")
    passwd = [row for row in _read_table("/etc/passwd") if len(row) >= 6]
    entry = None
    if name_part.isdigit():
        uid = int(name_part)
        entry = next((row for row in passwd if row[2] == name_part), None)
    else:
        entry = next((row for row in passwd if row[0] == name_part), None)
        if entry is None:
            raise LookupError(f"user {name_part!r} not found in the container's /etc/passwd")
        uid = int(entry[2])
    gid = int(entry[3]) if entry is not None else 0
    home = entry[5] if entry is not None else "/"
    groups_table = [row for row in _read_table("/etc/group") if len(row) >= 3]
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            row = next((row for row in groups_table if row[0] == group_part), None)
            if row is None:
                raise LookupError(f"group {group_part!r} not found in the container's /etc/group")
            gid = int(row[2])
    supplementary = [gid]
    if entry is not None:
        for row in groups_table:
            members = row[3].split(",") if len(row) > 3 else []
            if entry[0] in members and row[2].isdigit() and int(row[2]) not in supplementary:
                supplementary.append(int(row[2]))
    return ResolvedUser(uid=uid, gid=gid, groups=supplementary, home=home or "/")
