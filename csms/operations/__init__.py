"""The state behind operator operations: reservations, smart charging, configuration, jobs, local lists."""

from csms.operations.recorder import MIGRATIONS, OperationsRecorder
from csms.operations.templates import ProfileTemplates
from csms.operations.validation import InvalidOperation, check_operation
from csms.operations.views import OperationsViews

__all__ = [
    "MIGRATIONS",
    "InvalidOperation",
    "OperationsRecorder",
    "OperationsViews",
    "ProfileTemplates",
    "check_operation",
]
