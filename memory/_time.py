"""UTC time at the storage boundary: tz-aware datetimes in, int64 microseconds since the epoch stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from memory._errors import InvalidQueryError

__all__ = ["EPOCH", "US_PER_HOUR", "from_us", "require_aware", "to_us", "utc_now"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
US_PER_HOUR = 3_600_000_000


def to_us(value: datetime) -> int:
    """Exact microseconds since the Unix epoch of a tz-aware datetime."""
    return (value - EPOCH) // _ONE_US


def from_us(value: int) -> datetime:
    """The UTC datetime of ``value`` microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=int(value))


def utc_now() -> datetime:
    """Wall-clock now, tz-aware UTC."""
    return datetime.now(UTC)


def require_aware(value: object, argument: str) -> datetime:
    """Check that a read-call argument is a tz-aware datetime and return it in UTC.

    Raises:
        InvalidQueryError: Not a datetime, or naive.
    """
    if not isinstance(value, datetime):
        raise InvalidQueryError(f"expected a timezone-aware datetime, got {type(value).__name__}", argument=argument)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidQueryError("naive datetimes are ambiguous; pass a timezone-aware one", argument=argument)
    return value.astimezone(UTC)
