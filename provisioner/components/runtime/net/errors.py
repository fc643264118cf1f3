"""Errors raised by the runtime's container networking (``runtime.net``).

The daemon turns these into API errors as they are: each message names the container, port or
interface concerned and says what to do about it.
"""


class NetworkError(Exception):
    """A network operation failed; the message is meant for the user."""


class PortInUse(NetworkError):
    """A requested host port is taken, by a host process or by another published container."""
