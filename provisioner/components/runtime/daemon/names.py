"""runtime/daemon: ids and default names of containers, and finding a container by either."""

from __future__ import annotations

import re
import secrets

_ADJECTIVES = ["brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid",
               "merry", "nifty", "proud", "quiet", "sharp", "swift", "tender", "vivid", "witty"]
_NOUNS = ["badger", "cedar", "comet", "falcon", "harbor", "heron", "lynx", "maple", "meadow",
          "orca", "otter", "pine", "quartz", "raven", "river", "tiger", "willow", "wren"]
VALID_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def new_id() -> str:
    """64 hex digits, as Docker's container ids."""
    return secrets.token_hex(32)


def generated_name(taken: set[str]) -> str:
    while True:
        name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}"
        if name not in taken:
            return name
        name = f"{name}_{secrets.randbelow(1000)}"
        if name not in taken:
            return name
