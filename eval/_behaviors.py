"""Generic behavior files (JSONL or CSV) in the ``tide ingest`` schema, validated row by row."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from eval._errors import DataFormatError

__all__ = ["BEHAVIOR_COLUMNS", "RejectedRow", "load_behaviors_file", "parse_behavior", "validate_rows"]

BEHAVIOR_COLUMNS = (
    "user_id", "item_id", "action", "text", "timestamp", "lat", "lon", "place", "weight", "attributes",
)
DEFAULT_ACTION = "interaction"
# Bounds on free text so that one bad row cannot blow up memory or a prompt downstream.
MAX_TEXT_CHARS = 2000
MAX_ID_CHARS = 200


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row that failed validation.

    Attributes:
        line: 1-based physical line number in the file (CSV header is line 1).
        reason: Why the row was rejected.
        raw: The raw row text (truncated to 500 characters).
        field: The column to blame, when one is (``"timestamp"``, ``"lat"``…).
    """

    line: int
    reason: str
    raw: str
    field: str | None = None


class _RowError(DataFormatError):
    """One row is invalid; the message is the reason, ``field`` the column to blame (if one is)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _parse_iso(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError as exc:
        raise _RowError(f"unparseable timestamp {text[:40]!r}", "timestamp") from exc
    if parsed.tzinfo is None:
        # Naive times are ambiguous (local? UTC?), so they are refused rather than guessed.
        raise _RowError(f"timestamp {text[:40]!r} has no timezone", "timestamp")
    return parsed.astimezone(UTC)


def _parse_timestamp(value: Any) -> datetime:
    if _blank(value):
        raise _RowError("missing timestamp", "timestamp")
    if isinstance(value, bool):
        raise _RowError("timestamp must be ISO 8601 with a timezone or epoch seconds", "timestamp")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            return _parse_iso(text)
    if not math.isfinite(seconds):
        raise _RowError("timestamp is not finite", "timestamp")
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise _RowError(f"epoch timestamp {seconds} out of range", "timestamp") from exc


def _parse_float(value: Any, name: str, low: float, high: float) -> float | None:
    if _blank(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise _RowError(f"{name} is not a number: {str(value)[:40]!r}", name) from exc
    if not math.isfinite(number) or not low <= number <= high:
        raise _RowError(f"{name} {number} outside [{low}, {high}]", name)
    return number


def _parse_id(value: Any, name: str, required: bool) -> str | None:
    if _blank(value):
        if required:
            raise _RowError(f"missing {name}", name)
        return None
    text = str(value).strip()
    if len(text) > MAX_ID_CHARS:
        raise _RowError(f"{name} longer than {MAX_ID_CHARS} characters", name)
    return text


def parse_behavior(row: dict[str, Any]) -> dict[str, Any]:
    """Validate one behavior row and normalise its types.

    Required: ``user_id``, ``text`` (non-empty, at most 2,000 characters), ``timestamp`` (ISO 8601 with a
    timezone, or epoch seconds). Optional: ``item_id``, ``action`` (default ``"interaction"``), ``lat``
    and ``lon`` (both or neither, degrees), ``place``, ``weight`` (finite, >= 0, default 1.0),
    ``attributes`` (a JSON object, or its JSON text in CSV). Unknown columns are rejected, so a typo in a
    header does not silently drop data.

    Args:
        row: Column name to raw value.

    The row must also make a valid ``memory.Behavior`` (a timestamp more than a day ahead, an action
    that is not a lower-case token, …), so a row accepted here is never refused later by the store.

    Returns:
        The normalised row with every column in ``BEHAVIOR_COLUMNS``; ``timestamp`` is a UTC datetime.

    Raises:
        DataFormatError: With the reason, if the row is invalid.
    """
    unknown = sorted(set(row) - set(BEHAVIOR_COLUMNS))
    if unknown:
        raise _RowError(f"unknown columns {unknown}", unknown[0])
    user_id = _parse_id(row.get("user_id"), "user_id", required=True)
    item_id = _parse_id(row.get("item_id"), "item_id", required=False)
    action = _parse_id(row.get("action"), "action", required=False) or DEFAULT_ACTION
    text = row.get("text")
    if _blank(text):
        raise _RowError("missing text", "text")
    text = str(text).strip()
    if len(text) > MAX_TEXT_CHARS:
        raise _RowError(f"text longer than {MAX_TEXT_CHARS} characters", "text")
    timestamp = _parse_timestamp(row.get("timestamp"))
    lat = _parse_float(row.get("lat"), "lat", -90.0, 90.0)
    lon = _parse_float(row.get("lon"), "lon", -180.0, 180.0)
    if (lat is None) != (lon is None):
        raise _RowError("lat and lon must be given together", "lon" if lon is None else "lat")
    place = row.get("place")
    place = None if _blank(place) else str(place).strip()[:MAX_ID_CHARS]
    weight = _parse_float(row.get("weight"), "weight", 0.0, math.inf)
    attributes = row.get("attributes")
    if _blank(attributes):
        attributes = {}
    elif isinstance(attributes, str):
        try:
            attributes = json.loads(attributes)
        except json.JSONDecodeError as exc:
            raise _RowError(f"attributes is not valid JSON: {exc.msg}", "attributes") from exc
    if not isinstance(attributes, dict):
        raise _RowError("attributes must be a JSON object", "attributes")
    out = {
        "user_id": user_id,
        "item_id": item_id,
        "action": action,
        "text": text,
        "timestamp": timestamp,
        "lat": lat,
        "lon": lon,
        "place": place,
        "weight": 1.0 if weight is None else weight,
        "attributes": attributes,
    }
    _to_behavior(out)
    return out


def _to_behavior(row: dict[str, Any]) -> Any:
    """The :class:`memory.Behavior` of a normalised row, or a ``_RowError`` naming the column."""
    from eval._tide import behavior_from_row
    from memory import InvalidBehaviorError

    try:
        return behavior_from_row(row)
    except InvalidBehaviorError as exc:
        field = (exc.field or "").removeprefix("location.") or None
        raise _RowError(exc.reason, "lat" if field == "location" else field) from None


def validate_rows(records: list[Any]) -> tuple[list[tuple[int, Any]], list[RejectedRow]]:
    """Validate already-decoded rows (e.g. a JSON request) with the same policy as ``load_behaviors_file``.

    Args:
        records: Row mappings in the ``tide ingest`` schema; anything else is a rejected row.

    Returns:
        ``(behaviors, rejected)``: ``(line, memory.Behavior)`` for each valid row and a ``RejectedRow`` for
        each invalid one; lines are 1-based positions in ``records``.
    """
    good: list[tuple[int, Any]] = []
    rejected: list[RejectedRow] = []
    for line, record in enumerate(records, start=1):
        raw = json.dumps(record, default=str, ensure_ascii=False)[:500]
        if not isinstance(record, dict):
            rejected.append(RejectedRow(line, "row is not a JSON object", raw))
            continue
        try:
            good.append((line, _to_behavior(parse_behavior(record))))
        except _RowError as exc:
            rejected.append(RejectedRow(line, str(exc), raw, exc.field))
    return good, rejected


def load_behaviors_file(
    path: str | Path, *, format: Literal["jsonl", "csv"] | None = None
) -> tuple[list[dict[str, Any]], list[RejectedRow]]:
    """Read a JSONL or CSV behavior file, keeping good rows and explaining bad ones.

    Args:
        path: The file. ``.jsonl``/``.ndjson``/``.json`` are read as JSON lines, ``.csv`` as CSV with a
            header row; ``format`` overrides the suffix.
        format: ``"jsonl"`` or ``"csv"``.

    Returns:
        ``(rows, rejected)``: valid rows normalised by ``parse_behavior``, in file order, and one
        ``RejectedRow`` (line number and reason) per invalid row. Blank lines are skipped.

    Raises:
        DataFormatError: If the file is missing, its format is unknown, or a CSV has no header.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("behavior file not found", path=str(path))
    if format is None:
        suffix = path.suffix.lower()
        if suffix in {".jsonl", ".ndjson", ".json"}:
            format = "jsonl"
        elif suffix == ".csv":
            format = "csv"
        else:
            raise DataFormatError(f"unknown behavior file type {suffix!r}; use .jsonl or .csv", path=str(path))
    rows: list[dict[str, Any]] = []
    rejected: list[RejectedRow] = []
    if format == "jsonl":
        with path.open(encoding="utf-8") as f:
            for line_no, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                    if not isinstance(record, dict):
                        raise _RowError("line is not a JSON object")
                    rows.append(parse_behavior(record))
                except json.JSONDecodeError as exc:
                    rejected.append(RejectedRow(line_no, f"invalid JSON: {exc.msg}", raw.strip()[:500]))
                except _RowError as exc:
                    rejected.append(RejectedRow(line_no, str(exc), raw.strip()[:500], exc.field))
        return rows, rejected
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise DataFormatError("CSV file has no header row", path=str(path))
        header = [h.strip() for h in header]
        start = reader.line_num + 1
        for record in reader:
            line_no, start = start, reader.line_num + 1  # quoted newlines span several physical lines
            if not any(cell.strip() for cell in record):
                continue
            raw = ",".join(record)[:500]
            if len(record) != len(header):
                rejected.append(RejectedRow(line_no, f"expected {len(header)} fields, got {len(record)}", raw))
                continue
            try:
                rows.append(parse_behavior(dict(zip(header, record, strict=True))))
            except _RowError as exc:
                rejected.append(RejectedRow(line_no, str(exc), raw, exc.field))
    return rows, rejected
