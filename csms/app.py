"""Composition root: builds every module and runs them in one nursery until SIGTERM/SIGINT, then drains."""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from cluster import (
    Claim,
    Coordinator,
    EpochSource,
    EtcdClient,
    EtcdCoordinator,
    LeaderJobRunner,
    SingleNodeCoordinator,
    every,
)
from csms import authorization, commands, console, devicemodel, operations, outbox, sites, stations, transactions
from csms.api import ApiServices, build_api
from csms.api.command_payloads import CommandPayloads
from csms.central_system import CentralSystem16, CentralSystem201, CentralSystemSettings, domain_check
from csms.central_system.certificates import StationCertificates
from csms.central_system.security_operations import SecurityOperations
from csms.config import Config, require_database
from csms.export_setup import export_gauges, run_exporters
from csms.gc_tuning import ConnectionFreezer, tune_garbage_collector
from csms.leader_jobs import (
    Rebalancer,
    RebalanceSettings,
    close_abandoned_transactions,
    expire_reservations,
    expire_stale_commands,
)
from csms.observability import (
    GatewayMetrics,
    GcPauseMetrics,
    Metrics,
    RpcMetrics,
    SlowStepMetrics,
    SlowSteps,
    configure_logging,
    measure_event_loop_lag,
    observe_gc_pauses,
)
from csms.observability.cluster_metrics import ClusterMetrics
from csms.observability.site_metrics import SiteMetrics
from csms.observability.storage_metrics import StorageMetrics
from csms.partition_jobs import RetentionSettings, maintain_partitions
from csms.shedding import Shedder
from csms.stations import AuthLimits, Gateway, GatewaySettings, StationNotConnected, StationRegistry
from csms.stations.certificate_authority import BuiltInCa
from csms.storage import Database, StorageError

log = logging.getLogger("csms")

LAST_SEEN_FLUSH_SECONDS = 5.0  # how stale `last_seen_at` may be, traded against one UPDATE per station per flush

MIGRATIONS = [
    ("outbox", outbox.MIGRATIONS),
    ("stations", stations.MIGRATIONS),
    ("transactions", transactions.MIGRATIONS),
    ("authorization", authorization.MIGRATIONS),
    ("commands", commands.MIGRATIONS),
    ("operations", operations.MIGRATIONS),
    ("console", console.MIGRATIONS),
    ("devicemodel", devicemodel.MIGRATIONS),
    ("sites", sites.MIGRATIONS),
]


def package_version() -> str:
    try:
        return version("csms")
    except PackageNotFoundError:
        return "0.0.0+local"


def _tls(config: Config, metrics: Metrics) -> stations.ReloadingTls | None:
    if not config.tls_cert_file:
        return None
    files = stations.TlsFiles(config.tls_cert_file, config.tls_key_file, config.tls_client_ca_file)
    return stations.ReloadingTls(files, on_reload=metrics.tls_reloaded)


def _certificate_authority(config: Config) -> BuiltInCa | None:
    """The built-in CA when its certificate and key are mounted; otherwise CSRs wait for an external CA."""
    if not config.ca_cert_file:
        return None
    return BuiltInCa(config.ca_cert_file, config.ca_key_file, config.station_certificate_days)


def _security(config: Config) -> stations.SecuritySettings:
    return stations.SecuritySettings(
        identity=config.tls_station_identity,
        trusted_proxies=stations.parse_networks(config.trusted_proxies),
        client_ca_file=config.tls_client_ca_file,
    )


def _advertise_address(config: Config) -> str:
    if config.advertise_address:
        return str(config.advertise_address)
    host = "127.0.0.1" if config.bind in ("0.0.0.0", "::") else config.bind
    return f"http://{host}:{config.api_port}"


@asynccontextmanager
async def open_coordinator(config: Config, metrics: Metrics, epochs: EpochSource) -> AsyncIterator[Coordinator]:
    observer = ClusterMetrics(metrics)
    if not config.etcd_endpoints:
        yield SingleNodeCoordinator(
            config.node_id,
            address=_advertise_address(config),
            version=package_version(),
            observer=observer,
            epochs=epochs,
        )
        return
    async with EtcdClient(
        list(config.etcd_endpoints),
        username=config.etcd_username or None,
        password=config.etcd_password or None,
        ca_file=config.etcd_ca_file or None,
        on_request=observer.etcd_request,
    ) as client:
        yield EtcdCoordinator(
            client,
            config.node_id,
            _advertise_address(config),
            package_version(),
            prefix=config.etcd_prefix,
            lease_ttl=config.lease_ttl,
            observer=observer,
            epochs=epochs,
        )


async def serve_api(app: Any, config: Config, *, task_status: trio.TaskStatus[int]) -> None:
    hconfig = HypercornConfig()
    hconfig.bind = [f"{config.bind}:{config.api_port}"]
    hconfig.accesslog = None
    hconfig.errorlog = logging.getLogger("hypercorn.error")
    hconfig.graceful_timeout = 5
    hconfig.keep_alive_timeout = 30
    hconfig.h11_max_incomplete_size = 64 * 1024
    async with trio.open_nursery() as nursery:
        bound: list[str] = await nursery.start(partial(hypercorn_serve, app, hconfig))
        task_status.started(int(bound[0].rsplit(":", 1)[1]))


async def run(config: Config, *, task_status: trio.TaskStatus[dict[str, int]] = trio.TASK_STATUS_IGNORED) -> None:
    """Run one replica until SIGTERM/SIGINT (or cancellation), then drain and return."""
    require_database(config)
    metrics = Metrics()
    metrics.build_info.info({"version": package_version(), "node_id": config.node_id})
    draining = trio.Event()

    async with Database.open(
        config.database_url,
        pool_size=config.db_pool_size,
        group_commit=config.group_commit,
        max_batch=config.group_commit_max_batch,
        max_wait=config.group_commit_max_wait_ms / 1000,
        writers=config.db_writers,
        observer=StorageMetrics(metrics),
    ) as db:
        await db.migrate(MIGRATIONS)
        async with open_coordinator(config, metrics, db) as coordinator:
            registry = StationRegistry(db)
            ledger = transactions.TransactionLedger(db)
            id_tags = authorization.IdTagStore(db, cache_seconds=config.id_tag_cache_seconds)
            recorder = operations.OperationsRecorder(db)
            last_seen = stations.LastSeen(registry, LAST_SEEN_FLUSH_SECONDS)
            presence = stations.PresenceRecorder(db, config.node_id)
            device_model = devicemodel.DeviceModel(db)
            security_events = stations.SecurityEventRecorder(registry.security)
            central_settings = CentralSystemSettings(
                heartbeat_interval=config.heartbeat_interval,
                boot_status=config.boot_status,
                reclaim_trigger=config.reclaim_trigger,
            )
            domain = (central_settings, registry, ledger, id_tags, recorder, last_seen, db)
            # One adapter per subprotocol, in the server's preference order (CSMS_OCPP_VERSIONS).
            available: dict[str, stations.ProtocolAdapter] = {
                "ocpp1.6": (central16 := CentralSystem16(*domain)),
                "ocpp2.0.1": (central201 := CentralSystem201(*domain, record_report=device_model.record_report)),
            }
            adapters = [available[subprotocol] for subprotocol in config.ocpp_versions]

            async def record_fence(claim: Claim) -> int | None:
                return await db.record_fence(claim.station_id, claim.epoch, claim.revision, config.node_id)

            gateway = Gateway(
                GatewaySettings(
                    bind=config.bind,
                    port=config.ocpp_port,
                    path_prefix=config.ocpp_path_prefix,
                    registration=config.registration,
                    ping_interval=config.ping_interval,
                    ping_timeout=config.ping_timeout,
                    call_timeout=config.call_timeout,
                    max_frame_bytes=config.max_frame_bytes,
                    max_concurrent_handshakes=config.max_concurrent_handshakes,
                    tls=_tls(config, metrics),
                    tls_reload_interval=config.tls_reload_seconds,
                    security=_security(config),
                    auth=AuthLimits(
                        failures_per_minute=config.auth_failures_per_minute,
                        source_failures_per_minute=config.auth_source_failures_per_minute,
                        max_concurrent_hashes=config.auth_max_concurrent_hashes,
                        max_queued_hashes=config.auth_max_queued_hashes,
                    ),
                ),
                registry,
                coordinator,
                record_fence,
                adapters,
                presence,
                observer=GatewayMetrics(metrics),
                rpc_observer=RpcMetrics(metrics),
                security_events=security_events,
            )

            # What Postgres can hold, for commands as for station calls, per protocol.
            storable = {protocol: domain_check(commands.version_of(protocol)) for protocol in commands.PROTOCOLS}

            async def local_call(
                station_id: str, protocol: str, action: str, payload: dict[str, Any], timeout: float
            ) -> Any:
                try:
                    if gateway.connection(station_id).protocol != protocol:
                        raise commands.ProtocolChanged(gateway.connection(station_id).protocol)
                    result = await gateway.call(station_id, action, payload, timeout)
                except StationNotConnected:
                    raise commands.NotConnectedHere(station_id) from None
                # OcppError: recorded like a station's invalid response.
                storable[protocol].check_response(action, result)
                return result

            def check_command(protocol: str, action: str, payload: dict[str, Any]) -> None:
                storable[protocol].check_request(action, payload)
                operations.check_operation(protocol, action, payload)

            async def command_requested(record: dict[str, Any]) -> None:
                await recorder.command_requested(record)
                await device_model.command_requested(record)

            async def command_completed(record: dict[str, Any]) -> None:
                await recorder.command_completed(record)
                await device_model.command_completed(record)

            shed = Shedder(gateway, ledger, metrics, config.drain_rate, config.rebalance_station_cooldown)
            internal_http = httpx.AsyncClient(timeout=10.0)
            command_service = commands.CommandService(
                commands.CommandStore(db),
                coordinator,
                local_call,
                commands.HttpForwarder(internal_http, config.internal_secret),
                call_timeout=config.call_timeout,
                extra_check=check_command,
                on_requested=command_requested,
                on_completed=command_completed,
                guard_check=sites.SiteFences(db).check,  # site profiles carry their site's token
            )
            certificates = StationCertificates(
                registry.security,
                command_service,
                security_events,
                _certificate_authority(config),
                config.certificate_expiry_warning_days * 86400,
                registry.protocol_of,
            )
            central16.certificates = central201.certificates = certificates
            rebalancer = Rebalancer(
                coordinator,
                internal_http,
                config.internal_secret,
                shed,
                RebalanceSettings(
                    tolerance=config.rebalance_tolerance,
                    active_tx_imbalance=config.rebalance_active_tx_imbalance,
                    interval=config.rebalance_interval,
                    drain_rate=config.drain_rate,
                ),
                on_round=metrics.rebalance_rounds.inc,
            )
            event_reader = outbox.OutboxReader(db, config.export_source)
            retention = RetentionSettings(
                config.retention_outbox_hours, config.retention_meter_values_days, config.retention_archive_url
            )
            export_store = outbox.ExportStore(db)
            leader_jobs = LeaderJobRunner(
                coordinator,
                [
                    every(15.0, lambda: export_gauges(export_store, event_reader, metrics)),
                    every(600.0, lambda: maintain_partitions(db, retention, metrics)),
                    every(config.rebalance_interval, rebalancer.round),
                    every(max(10.0, config.call_timeout), lambda: expire_stale_commands(command_service)),
                    every(30.0, lambda: expire_reservations(recorder)),
                    *(
                        [every(600.0, lambda: close_abandoned_transactions(ledger, config.abandoned_transaction_hours))]
                        if config.abandoned_transaction_hours > 0
                        else []
                    ),
                ],
            )
            metrics.owned_stations.set_function(lambda: gateway.connection_count)
            site_service = sites.SiteService(
                db,
                coordinator,
                site_inputs(ledger, command_service, coordinator, registry),
                sites.BalancerSettings(interval=config.site_interval),
                poll_interval=min(1.0, config.lease_ttl / 4),
                observer=SiteMetrics(metrics),
            )

            async def readiness() -> dict[str, bool]:
                return {
                    "database": await db.ping(),
                    "migrations": db.migrations_applied,
                    "cluster": coordinator.healthy,
                    "accepting": not draining.is_set(),
                }

            operations_views = operations.OperationsViews(db)
            profile_templates = operations.ProfileTemplates(db)
            hub = console.LiveHub(db, coordinator)
            console_app = console.build_console(
                console.ConsoleServices(
                    registry=registry,
                    fleet=stations.FleetViews(db),
                    sessions=transactions.SessionViews(db),
                    id_tags=id_tags,
                    coordinator=coordinator,
                    commands=command_service,
                    payloads=CommandPayloads(operations_views, profile_templates),
                    operations=operations_views,
                    audit=console.ConsoleAudit(db),
                    hub=hub,
                    auth=console.Sessions(
                        console.derive_key(config.console_secret, config.internal_secret, config.api_tokens),
                        config.api_tokens,
                        config.console_session_minutes * 60,
                    ),
                    http=internal_http,
                    readiness=readiness,
                    sites=site_service,
                )
            )
            api = build_api(
                ApiServices(
                    registry=registry,
                    ledger=ledger,
                    id_tags=id_tags,
                    coordinator=coordinator,
                    metrics=metrics,
                    readiness=readiness,
                    api_tokens=config.api_tokens,
                    commands=command_service,
                    operations=operations_views,
                    profile_templates=profile_templates,
                    device_model=devicemodel.DeviceModelViews(db),
                    shed=shed,
                    certificates=certificates,
                    security=SecurityOperations(
                        registry.security,
                        command_service,
                        security_events,
                        config.password_iterations,
                        registry.protocol_of,
                        config.ocpp_public_url,
                    ),
                    internal_secret=config.internal_secret,
                    password_iterations=config.password_iterations,
                    console=console_app,
                    sites=site_service,
                    events=event_reader,
                    exports=export_store,
                )
            )
            async with internal_http, trio.open_nursery() as nursery:
                await nursery.start(coordinator.run)
                await nursery.start(command_service.run)
                await nursery.start(last_seen.run)
                await nursery.start(presence.run)
                await nursery.start(hub.run)
                await nursery.start(site_service.run)
                await nursery.start(security_events.run)
                await nursery.start(certificates.run)
                nursery.start_soon(certificates.watch_expiry, metrics.certificates_expiring)
                await nursery.start(run_exporters, config, event_reader, export_store, coordinator, metrics)
                nursery.start_soon(leader_jobs.run)
                nursery.start_soon(measure_event_loop_lag, metrics.event_loop_lag)
                if config.slow_step_seconds > 0:
                    trio.lowlevel.add_instrument(SlowSteps(config.slow_step_seconds, SlowStepMetrics(metrics)))
                nursery.start_soon(observe_gc_pauses, GcPauseMetrics(metrics))
                freezer = ConnectionFreezer(lambda: gateway.connection_count, lambda: gateway.connections_closed)
                nursery.start_soon(freezer.run)
                ocpp_port = await nursery.start(gateway.serve)
                api_port = await nursery.start(serve_api, api, config)
                log.info("replica ready", extra={"ocpp_port": ocpp_port, "api_port": api_port})
                task_status.started({"ocpp_port": ocpp_port, "api_port": api_port})
                await _wait_for_signal()
                draining.set()
                log.info("draining", extra={"stations": gateway.connection_count})
                started = time.monotonic()
                with trio.move_on_after(config.drain_timeout):
                    await gateway.drain(config.drain_rate)
                with trio.move_on_after(5):
                    await coordinator.drain()
                log.info("drained", extra={"seconds": round(time.monotonic() - started, 3)})
                nursery.cancel_scope.cancel()


def site_inputs(
    ledger: transactions.TransactionLedger,
    command_service: commands.CommandService,
    coordinator: Coordinator,
    registry: StationRegistry,
) -> sites.SiteInputs:
    """What load management reads from the other modules and how its profiles go out: as commands in the
    station's protocol, routed to the station's owner like any other."""

    async def sessions(station_ids: list[str]) -> dict[str, list[sites.Session]]:
        found = await ledger.open_sessions(station_ids)
        return {station: [sites.Session(*row) for row in rows] for station, rows in found.items()}

    async def readings(station_ids: list[str], within: float) -> dict[str, list[sites.Reading]]:
        found = await ledger.recent_draw(station_ids, within)
        return {station: [sites.Reading(**r) for r in rows] for station, rows in found.items()}

    async def deliver(items: list[sites.Delivery], by: str, guard: tuple[str, int]) -> list[str]:
        batch = [commands.BatchItem(*item) for item in items]
        return [
            _outcome(a)
            for a in await command_service.submit_batch(batch, commands.Actor(by), guard=commands.Guard(*guard))
        ]

    async def protocols(station_ids: list[str]) -> dict[str, str]:
        return await registry.protocols_of(station_ids)

    async def connected(station_ids: list[str]) -> set[str]:
        return set(await coordinator.owners_of(station_ids))

    return sites.SiteInputs(sessions, readings, deliver, protocols, connected)


def _outcome(answer: dict[str, Any] | commands.CommandRejected) -> str:
    """A site profile's command record as the balancer's outcome."""
    if isinstance(answer, commands.CommandRejected):  # the station switched protocol since the round read it
        log.warning("site profile refused", extra={"error": answer.message})
        return "offline"
    if answer["status"] == "completed":
        return "accepted" if (answer.get("result") or {}).get("status") == "Accepted" else "rejected"
    statuses = {"offline": "offline", "call_error": "rejected", "superseded": "superseded"}
    return statuses.get(answer["status"], "unknown")


async def _wait_for_signal() -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            return


def main_serve(config: Config) -> None:
    configure_logging(config.log_level, config.log_format, config.node_id)
    tune_garbage_collector()
    try:
        trio.run(run, config)
    except StorageError as exc:
        # Start-up against a database that is down: one clear line; the supervisor restarts us.
        log.error("cannot start: %s", exc)
        sys.exit(f"csms: {exc}")
