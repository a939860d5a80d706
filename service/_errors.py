"""Errors of the service layer, under the project's ``TideError`` root."""

from __future__ import annotations

from agent import TideError

__all__ = ["KeyNotFoundError", "ServiceError"]


class ServiceError(TideError):
    """The service cannot do what was asked (bad configuration, key store failure)."""


class KeyNotFoundError(ServiceError):
    """No API key with this id exists.

    Attributes:
        key_id: The id that was looked up.
    """

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no API key with id {key_id!r}")
        self.key_id = key_id
