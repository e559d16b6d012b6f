"""Exporters: the outbox delivered to NATS JetStream and webhooks, one active exporter per sink cluster-wide."""

from csms.export.nats_sink import NatsSink, subject_for
from csms.export.runner import Exporter, ExportObserver, NullExportObserver
from csms.export.sink import CloudEvent, DeliveryFailed, Sink
from csms.export.webhook import SIGNATURE_HEADER, WebhookSink, sign

__all__ = [
    "SIGNATURE_HEADER",
    "CloudEvent",
    "DeliveryFailed",
    "ExportObserver",
    "Exporter",
    "NatsSink",
    "NullExportObserver",
    "Sink",
    "WebhookSink",
    "sign",
    "subject_for",
]
