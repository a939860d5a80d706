"""The memory package's errors, all under :class:`core.TideError` (the project's root, on the bottom floor)."""

from __future__ import annotations

from core import TideError

__all__ = [
    "EmbedderMismatchError",
    "InvalidBehaviorError",
    "InvalidQueryError",
    "MemoryStoreError",
    "StoreLockedError",
]


class MemoryStoreError(TideError):
    """The memory store cannot do what was asked (closed, unreadable, inconsistent, I/O failure)."""


class InvalidBehaviorError(MemoryStoreError, ValueError):
    """A behavior record is invalid; when raised by ``MemoryStore.add`` nothing of the batch is stored.

    Attributes:
        field: Dotted name of the offending field (``"timestamp"``, ``"location.lat"``), or ``None``
            when the record as a whole is wrong (e.g. not a mapping).
        index: 0-based position of the record in the batch passed to ``add``, or ``None`` when the
            record was built on its own.
        record: A short description of the record (user, item, action), for the message and logs.
        reason: The reason without the location prefix.
    """

    def __init__(
        self, reason: str, *, field: str | None = None, index: int | None = None, record: str | None = None
    ) -> None:
        where = []
        if index is not None:
            where.append(f"record {index}")
        if record:
            where.append(record)
        if field:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"invalid behavior ({prefix}): {reason}" if prefix else f"invalid behavior: {reason}")
        self.field = field
        self.index = index
        self.record = record
        self.reason = reason


class InvalidQueryError(MemoryStoreError, ValueError):
    """An argument of a read call (``retrieve``, ``recent``, ``profile``, ``forget``) is invalid.

    Attributes:
        argument: Name of the offending argument.
    """

    def __init__(self, message: str, *, argument: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument


class StoreLockedError(MemoryStoreError):
    """Another process already has this store open; only one writer process may hold a store.

    Attributes:
        path: The store directory.
        holder: What the lock file says about the holder (pid, host), if readable.
    """

    def __init__(self, path: str, holder: str | None) -> None:
        super().__init__(
            f"memory store {path} is already open in another process ({holder or 'unknown holder'}); "
            "one process may open a store at a time — share one MemoryStore between threads instead"
        )
        self.path = path
        self.holder = holder


class EmbedderMismatchError(MemoryStoreError):
    """The store was built with a different embedder (name or dimension) than the one supplied.

    Attributes:
        stored: ``(name, dim)`` recorded in the store.
        given: ``(name, dim)`` of the embedder passed to ``open``.
    """

    def __init__(self, stored: tuple[str, int], given: tuple[str, int]) -> None:
        super().__init__(
            f"store was built with embedder {stored[0]!r} (dim {stored[1]}), got {given[0]!r} (dim {given[1]}); "
            "vectors from different embedders are not comparable"
        )
        self.stored = stored
        self.given = given
