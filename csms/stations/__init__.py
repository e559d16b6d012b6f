"""The station gateway: WebSocket handshake, one RPC session per connection, and the station registry."""

from csms.stations.authentication import AuthLimits
from csms.stations.fleet import STATES, FleetViews, PresenceRecorder, StationFilter
from csms.stations.gateway import Gateway, GatewaySettings, ProtocolAdapter, StationConnection, StationNotConnected
from csms.stations.last_seen import LastSeen
from csms.stations.passwords import hash_password
from csms.stations.registry import MIGRATIONS, BootInfo, StationRegistry, charging, event, notification

__all__ = [
    "MIGRATIONS",
    "STATES",
    "AuthLimits",
    "BootInfo",
    "FleetViews",
    "Gateway",
    "GatewaySettings",
    "LastSeen",
    "PresenceRecorder",
    "ProtocolAdapter",
    "StationConnection",
    "StationFilter",
    "StationNotConnected",
    "StationRegistry",
    "charging",
    "event",
    "hash_password",
    "notification",
]
