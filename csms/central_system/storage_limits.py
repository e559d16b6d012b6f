"""What Postgres can hold of a station's message: the column ranges the protocol layer's domain check needs.

Integer columns are ``integer`` (int4) unless named here. Meter readings are ``bigint``, but
``energy_wh = meter_stop - meter_start`` is a ``bigint`` too, so each reading is bounded by half the int8
range: any two of them then subtract without overflow.
"""

from __future__ import annotations

from csms.ocpp import DomainCheck, StorageLimits

INT4 = (-(2**31), 2**31 - 1)
METER = (-(2**62), 2**62 - 1)

LIMITS = StorageLimits(default_int=INT4, int_ranges={"meterStart": METER, "meterStop": METER})


def domain_check(version: str) -> DomainCheck:
    return DomainCheck(version, LIMITS)
