"""The operator web console at /ui: server-rendered pages over the same module faces as the REST API, live
through Server-Sent Events fed by Postgres NOTIFY from every replica. No build step, no CDN: templates and
assets ship in the package."""

from csms.console.app import build_console
from csms.console.audit import MIGRATIONS, ConsoleAudit
from csms.console.live import LiveHub
from csms.console.services import ConsoleServices
from csms.console.session import Sessions, derive_key

__all__ = ["MIGRATIONS", "ConsoleAudit", "ConsoleServices", "LiveHub", "Sessions", "build_console", "derive_key"]
