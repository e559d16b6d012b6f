"""Metrics, health and structured logging."""

from csms.observability.logs import configure_logging
from csms.observability.loop_lag import measure_event_loop_lag
from csms.observability.metrics import GatewayMetrics, Metrics, RpcMetrics

__all__ = ["GatewayMetrics", "Metrics", "RpcMetrics", "configure_logging", "measure_event_loop_lag"]
