"""Site load management: stations sharing one grid limit, safe through failover (issue 15)."""

from csms.sites.allocation import Demand, Held, Target, held_amps, plan
from csms.sites.balancer import BalancerSettings, Delivery, Reading, Session, SiteInputs, SiteObserver
from csms.sites.fences import SiteFences, SiteFenceSuperseded
from csms.sites.model import SITE_ID_PATTERN, SiteSpec, StationSpec
from csms.sites.service import SiteService
from csms.sites.store import MIGRATIONS, Round, StationOnOtherSite

__all__ = [
    "MIGRATIONS",
    "SITE_ID_PATTERN",
    "BalancerSettings",
    "Delivery",
    "Demand",
    "Held",
    "Reading",
    "Round",
    "Session",
    "SiteFenceSuperseded",
    "SiteFences",
    "SiteInputs",
    "SiteObserver",
    "SiteService",
    "SiteSpec",
    "StationOnOtherSite",
    "StationSpec",
    "Target",
    "held_amps",
    "plan",
]
