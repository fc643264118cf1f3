"""runtime/daemon: errors the API turns into HTTP answers ({"message": ...} with a status)."""


class DaemonError(Exception):
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(DaemonError):
    status = 400


class NotFound(DaemonError):
    status = 404


class Conflict(DaemonError):
    status = 409


class Unauthorized(DaemonError):
    status = 401
