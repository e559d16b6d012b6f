"""Metrics, health and structured logging."""

from csms.observability.logs import configure_logging
from csms.observability.metrics import GatewayMetrics, Metrics, RpcMetrics

__all__ = ["GatewayMetrics", "Metrics", "RpcMetrics", "configure_logging"]
