"""Errors raised by the container core (container/api.py and what it calls)."""


class ContainerError(Exception):
    """One clear message naming the container and what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
