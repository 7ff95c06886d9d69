"""Refusals raised by the services.

Each carries the sentence a person needs to hear (`str(error)`), a stable `code` the API
returns as `"error"`, the HTTP status it maps to, and the facts behind it in `details`
so the API can add them to the JSON body.
"""
from __future__ import annotations

from datetime import datetime


class StockroomError(Exception):
    code = "refused"
    http_status = 409

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(StockroomError):
    """A value that can never be right (zero, negative, huge, wrong type, missing owner)."""

    code = "invalid"
    http_status = 422

    def __init__(self, message: str, field: str | None = None, **details):
        super().__init__(message, **details)
        self.field = field
        # One message per bad field, for forms and the API's 422 body.
        self.fields: dict[str, str] = details.pop("fields", None) or (
            {field: message} if field else {}
        )


class NotFound(StockroomError):
    code = "not_found"
    http_status = 404


class UnknownProduct(NotFound):
    code = "unknown_sku"


class InactiveProduct(NotFound):
    code = "inactive_sku"


class InsufficientStock(StockroomError):
    code = "insufficient_stock"

    def __init__(self, message: str, available: int | None = None, **details):
        if available is not None:
            details["available"] = available
        super().__init__(message, **details)
        self.available = available


class ReservationNotActive(StockroomError):
    code = "reservation_not_active"

    def __init__(self, message: str, status: str, ended_at: datetime | None, ended_by: str | None):
        super().__init__(message, status=status)
        self.status = status
        self.ended_at = ended_at
        self.ended_by = ended_by


class ExtendBeyondCap(StockroomError):
    code = "extend_beyond_cap"
    http_status = 422


class StaleCount(StockroomError):
    """The on-hand the staff member saw is no longer the on-hand in the database."""

    code = "stale_count"

    def __init__(self, message: str, current_on_hand: int):
        super().__init__(message, current_on_hand=current_on_hand)
        self.current_on_hand = current_on_hand


class BelowHeld(StockroomError):
    """A change would take on_hand below the units held by active reservations (or below 0)."""

    code = "below_held"

    def __init__(self, message: str, held: int):
        super().__init__(message, held=held)
        self.held = held


class OrderWrongState(StockroomError):
    code = "order_wrong_state"

    def __init__(self, message: str, status: str):
        super().__init__(message, status=status)
        self.status = status


class OrderNotCovered(StockroomError):
    """Confirming an order whose items are not all held."""

    code = "order_not_held"


class AlertWrongState(StockroomError):
    code = "alert_wrong_state"


class ImportRejected(StockroomError):
    """An import with bad rows: nothing was applied. `report` lists every row."""

    code = "import_rejected"
    http_status = 422

    def __init__(self, message: str, report):
        super().__init__(message)
        self.report = report


class TransferWrongState(StockroomError):
    """A transfer step its status does not allow (shipping a shipped one, cancelling one in
    transit): typically another staff member acted first."""

    code = "transfer_wrong_state"

    def __init__(self, message: str, status: str):
        super().__init__(message, status=status)
        self.status = status


class MoreThanInTransit(StockroomError):
    """Receiving or writing off more units of a line than are on their way."""

    code = "more_than_in_transit"


class Conflict(StockroomError):
    """A uniqueness clash a person can fix (an email or client name already taken)."""

    code = "conflict"


class SignInRefused(StockroomError):
    """Wrong email or password, or an inactive account: one sentence for all, on purpose."""

    code = "sign_in_refused"
    http_status = 401


class SignInThrottled(SignInRefused):
    """Too many failed sign-ins for the account or the address; the password was not checked."""

    code = "sign_in_throttled"
    http_status = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after
