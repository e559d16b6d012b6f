"""The OCPP 2.0.1 way to raise a station's security profile (use case A05): its SecurityProfile variable is
read-only, so the CSMS gives it a new connection profile (SetNetworkProfile) in a slot of its own, puts that slot
first in NetworkConfigurationPriority (SetVariables) and asks for a Reset when idle, on which the station
reconnects with the new profile. Each step is one audited command; the first one the station refuses stops it."""

from __future__ import annotations

from typing import Any

Payload = dict[str, Any]


class ProfileChangeUnsupported(Exception):
    """A 2.0.1 station's profile is raised with SetNetworkProfile, which needs the CSMS's public OCPP URL: set
    CSMS_OCPP_PUBLIC_URL (the wss:// address stations use)."""


def csms_url(public_url: str, profile: int) -> str:
    """Profile 1 is Basic auth over plain ws://, profiles 2 and 3 are TLS: the same address, its scheme told."""
    if not public_url:
        raise ProfileChangeUnsupported(public_url)
    rest = public_url.split("://", 1)[1]
    return ("ws://" if profile == 1 else "wss://") + rest


def network_profile_steps(public_url: str, profile: int, current: int) -> list[tuple[str, Payload]]:
    """Slot N holds the connection for profile N, so the new one never overwrites the slot the station is using
    now (a lower profile); that slot stays second in the priority list, a fallback if the new one fails."""
    priority = f"{profile},{current}" if 0 < current != profile else str(profile)
    connection = {
        "ocppVersion": "OCPP20",
        "ocppTransport": "JSON",
        "ocppCsmsUrl": csms_url(public_url, profile),
        "messageTimeout": 30,
        "securityProfile": profile,
        "ocppInterface": "Wired0",
    }
    variable = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NetworkConfigurationPriority"}}
    return [
        ("SetNetworkProfile", {"configurationSlot": profile, "connectionData": connection}),
        ("SetVariables", {"setVariableData": [{**variable, "attributeValue": priority}]}),
        ("Reset", {"type": "OnIdle"}),
    ]
