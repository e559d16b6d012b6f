"""The state behind operator operations: reservations, smart charging, configuration, jobs, local lists."""

from csms.operations.checks import check_operation
from csms.operations.profile_v201 import profile_v201
from csms.operations.recorder import MIGRATIONS, OperationsRecorder
from csms.operations.remote_start import RemoteStart, take_remote_start
from csms.operations.station_messages import (
    job_status,
    remote_start_linked_op,
    reservation_status,
    reservation_used,
    transaction_started_op,
)
from csms.operations.templates import ProfileTemplates
from csms.operations.validation import InvalidOperation
from csms.operations.views import OperationsViews

__all__ = [
    "MIGRATIONS",
    "InvalidOperation",
    "OperationsRecorder",
    "OperationsViews",
    "ProfileTemplates",
    "RemoteStart",
    "check_operation",
    "job_status",
    "profile_v201",
    "remote_start_linked_op",
    "reservation_status",
    "reservation_used",
    "take_remote_start",
    "transaction_started_op",
]
