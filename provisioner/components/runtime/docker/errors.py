"""runtime/docker: Docker's error answers ({"message": ...} with Docker's status codes)."""

from __future__ import annotations


class DockerError(Exception):
    """An answer the Docker API gives as it is: a status and Docker's wording."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def no_such_container(key: str) -> DockerError:
    return DockerError(404, f"No such container: {key}")
