"""Metrics, health and structured logging."""

from csms.observability.gc_pauses import observe_gc_pauses
from csms.observability.logs import configure_logging
from csms.observability.loop_lag import measure_event_loop_lag
from csms.observability.metrics import GatewayMetrics, GcPauseMetrics, Metrics, RpcMetrics, SlowStepMetrics
from csms.observability.slow_steps import SlowSteps

__all__ = [
    "GatewayMetrics",
    "GcPauseMetrics",
    "Metrics",
    "RpcMetrics",
    "SlowStepMetrics",
    "SlowSteps",
    "configure_logging",
    "measure_event_loop_lag",
    "observe_gc_pauses",
]
