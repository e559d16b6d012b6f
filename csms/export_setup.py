"""Composition of the exporters: which sinks the settings turn on, each run on one replica at a time."""

from __future__ import annotations

import logging

import httpx
import trio

from cluster import Coordinator
from csms.config import Config
from csms.export import Exporter, NatsSink, WebhookSink
from csms.observability import Metrics
from csms.observability.export_metrics import ExportMetrics
from csms.outbox import ExportStore, OutboxReader

log = logging.getLogger(__name__)


async def run_exporters(
    config: Config,
    reader: OutboxReader,
    store: ExportStore,
    coordinator: Coordinator,
    metrics: Metrics,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Every configured sink, each under its own cluster-wide exclusive lease, until cancelled."""
    observer = ExportMetrics(metrics)
    batch, poll = config.export_batch, config.export_poll_ms / 1000
    async with trio.open_nursery() as nursery:
        if config.export_nats_url:

            async def nats_job() -> None:
                async with NatsSink.open(
                    config.export_nats_url, stream=config.export_nats_stream, prefix=config.export_nats_subject_prefix
                ) as sink:
                    await Exporter(sink, reader, store, batch=batch, poll_interval=poll, observer=observer).run()

            nursery.start_soon(coordinator.run_exclusive, f"export-nats-{config.export_nats_stream}", nats_job)
        if config.export_webhook_url:

            async def webhook_job() -> None:
                async with httpx.AsyncClient() as client:
                    sink = WebhookSink(
                        client,
                        config.export_webhook_url,
                        config.export_webhook_secret,
                        store.dead_letter_for("webhook"),
                        attempts=config.export_webhook_attempts,
                        on_failure=lambda: observer.failed("webhook"),
                    )
                    exporter = Exporter(
                        sink,
                        reader,
                        store,
                        batch=min(batch, config.export_webhook_batch),
                        poll_interval=poll,
                        replay=sink.post,
                        observer=observer,
                    )
                    await exporter.run()

            nursery.start_soon(coordinator.run_exclusive, "export-webhook", webhook_job)
        task_status.started()


async def export_gauges(store: ExportStore, reader: OutboxReader, metrics: Metrics) -> None:
    """Leader job: outbox sequence (events written/s), each sink's lag in events and its dead letters."""
    metrics.outbox_sequence.set(await reader.last_sequence())
    for sink in await store.sinks():
        metrics.export_lag_events.labels(sink["sink"]).set(sink["lag_events"])
        metrics.export_dead_letters.labels(sink["sink"]).set(sink["dead_letters"])
