"""Domain errors raised by services; the API maps them to HTTP answers."""


class DomainError(Exception):
    """A request the business rules refuse. ``status_code`` is the HTTP answer."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, detail: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class NotAllowed(DomainError):
    status_code = 403
    code = "not_allowed"
