"""What can go wrong with a command, as exceptions the API maps to statuses."""

from __future__ import annotations


class CommandRejected(Exception):
    """The request is invalid before anything is sent (422)."""

    def __init__(self, message: str, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message, self.details = message, details or {}


class NotConnectedHere(Exception):
    """This replica has no live connection to the station (it moved, or never was here)."""


class ForwardFailed(Exception):
    """The owner replica could not be reached; `sent` says whether the request may have arrived."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class ProtocolChanged(Exception):
    """The station's live connection speaks another protocol than the one the command was validated for."""

    def __init__(self, protocol: str) -> None:
        super().__init__(protocol)
        self.protocol = protocol
