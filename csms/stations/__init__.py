"""The station gateway: WebSocket handshake, one RPC session per connection, and the station registry."""

from csms.stations.authentication import AuthLimits
from csms.stations.fleet import STATES, FleetViews, PresenceRecorder, StationFilter
from csms.stations.forwarded import parse_networks
from csms.stations.gateway import Gateway, GatewaySettings, ProtocolAdapter, StationConnection, StationNotConnected
from csms.stations.last_seen import LastSeen
from csms.stations.passwords import hash_password
from csms.stations.registry import MIGRATIONS, BootInfo, StationRegistry, charging, event, notification
from csms.stations.security_events import SecurityEventRecorder
from csms.stations.security_store import PROFILES, SecurityStore, StationCredentials, security_event
from csms.stations.station_security import SecuritySettings
from csms.stations.tls import ReloadingTls, TlsFiles

__all__ = [
    "MIGRATIONS",
    "PROFILES",
    "STATES",
    "AuthLimits",
    "BootInfo",
    "FleetViews",
    "Gateway",
    "GatewaySettings",
    "LastSeen",
    "PresenceRecorder",
    "ProtocolAdapter",
    "ReloadingTls",
    "SecurityEventRecorder",
    "SecuritySettings",
    "SecurityStore",
    "StationConnection",
    "StationCredentials",
    "StationFilter",
    "StationNotConnected",
    "StationRegistry",
    "TlsFiles",
    "charging",
    "event",
    "hash_password",
    "notification",
    "parse_networks",
    "security_event",
]
