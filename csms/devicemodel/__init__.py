"""The OCPP 2.0.1 device model: each station's components, variables, their attributes and characteristics.

Fed by NotifyReport parts (`DeviceModel.record_report`, called by the 2.0.1 central system), by the answers to
GetVariables / SetVariables and by the report requests they belong to (`command_requested` /
`command_completed`, the command service's hooks); read by the API through `DeviceModelViews`.
"""

from pathlib import Path

from csms.devicemodel.model import DeviceModel
from csms.devicemodel.views import DeviceModelViews

MIGRATIONS = Path(__file__).parent / "migrations"

__all__ = ["MIGRATIONS", "DeviceModel", "DeviceModelViews"]
