"""The OCPP 1.6 and 2.0.1 central systems, one protocol adapter each: station messages onto the domain modules.

It lives beside, not inside, `csms.ocpp` so that the protocol layer stays free of Postgres and of every domain
type; this is the one place where protocol and domain meet (see the README's design notes).
"""

from csms.central_system.storage_limits import domain_check
from csms.central_system.v16 import CentralSystem16, CentralSystemSettings
from csms.central_system.v201 import CentralSystem201, ReportHook

__all__ = ["CentralSystem16", "CentralSystem201", "CentralSystemSettings", "ReportHook", "domain_check"]
