"""The OCPP 1.6 central system: maps each station message onto the domain modules.

It lives beside, not inside, `csms.ocpp` so that the protocol layer stays free of Postgres and of every domain
type; this is the one place where protocol and domain meet (see the README's design notes).
"""

from csms.central_system.storage_limits import domain_check
from csms.central_system.v16 import CentralSystem16, CentralSystemSettings

__all__ = ["CentralSystem16", "CentralSystemSettings", "domain_check"]
