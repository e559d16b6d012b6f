"""Prometheus metrics, named by the conventions: `csms_` prefix, base units, `_total` counters.

The metric objects live in one registry per process; the observer classes below adapt them to the small
observer protocols the other modules define, so no module but this one imports prometheus-client.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, Histogram, Info, ProcessCollector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # CPU, memory, open files (process_*) and garbage collections (python_gc_*): the sizing signals per replica.
        ProcessCollector(registry=r)
        GCCollector(registry=r)
        self.build_info = Info("csms_build", "Version and node of this replica", registry=r)
        self.event_loop_lag = Histogram(
            "csms_event_loop_lag_seconds",
            "How late the event loop woke a sleeping task: time the loop spent on other work (or blocked)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.slow_task_steps = Histogram(
            "csms_slow_task_step_seconds",
            "Task steps that held the event loop at least CSMS_SLOW_STEP_SECONDS, by task (function) name",
            ["task"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.gc_pause = Histogram(
            "csms_gc_pause_seconds",
            "How long one garbage collection stopped the replica, by generation (2 = full)",
            ["generation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stations_connected = Gauge(
            "csms_stations_connected", "Station WebSocket connections open on this replica", registry=r
        )
        self.handshake_refusals = Counter(
            "csms_handshake_refusals_total",
            "WebSocket handshakes refused, by HTTP status",
            ["status"],
            registry=r,
        )
        self.rebalance_rounds = Counter(
            "csms_rebalance_rounds_total", "Rebalancing rounds this replica gave shed orders in (as leader)", registry=r
        )
        self.rebalance_shed = Counter(
            "csms_rebalance_shed_total",
            "Stations this replica closed for rebalancing, by whether they had a transaction open",
            ["charging"],
            registry=r,
        )
        self.password_hashes = Counter(
            "csms_station_password_hashes_total",
            "PBKDF2 password verifications run for station handshakes, by outcome (ok, failed)",
            ["outcome"],
            registry=r,
        )
        self.auth_throttled = Counter(
            "csms_station_auth_throttled_total",
            "Station handshakes refused before hashing: failures per station or source, or hashing busy",
            ["scope"],
            registry=r,
        )
        self.messages = Counter(
            "csms_ocpp_messages_total",
            "OCPP calls handled, by direction (in: from stations, out: to stations), action and outcome",
            ["direction", "action", "outcome"],
            registry=r,
        )
        self.message_seconds = Histogram(
            "csms_ocpp_message_duration_seconds",
            "Time to handle an OCPP call (in) or to get the station's answer (out)",
            ["direction", "action"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.db_batch_size = Histogram(
            "csms_db_group_commit_batch_size", "Writes per group commit", buckets=BATCH_BUCKETS, registry=r
        )
        self.db_commit_seconds = Histogram(
            "csms_db_commit_duration_seconds",
            "Duration of one group-commit transaction",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.db_query_seconds = Histogram(
            "csms_db_query_duration_seconds",
            "Duration of one database call outside group commit (reads, ad-hoc)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.db_errors = Counter("csms_db_errors_total", "Failed database operations", ["kind"], registry=r)
        self.fence_rejections = Counter(
            "csms_fence_rejections_total",
            "Writes refused because another replica owns the station",
            registry=r,
        )
        self.lease_up = Gauge("csms_cluster_lease_up", "1 while this replica holds a live etcd lease", registry=r)
        self.leader = Gauge("csms_cluster_leader", "1 while this replica is the leader", registry=r)
        self.owned_stations = Gauge("csms_cluster_owned_stations", "Stations this replica owns", registry=r)
        self.claims = Counter("csms_cluster_claims_total", "Station ownership claims", ["outcome"], registry=r)
        self.takeovers = Counter(
            "csms_cluster_takeovers_total", "Claims that took a station from another replica", registry=r
        )
        self.claims_lost = Counter(
            "csms_cluster_claims_lost_total", "Stations this replica lost to another replica", registry=r
        )
        self.claim_seconds = Histogram(
            "csms_cluster_claim_duration_seconds",
            "Time to claim a station in etcd",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.handshake_phase_seconds = Histogram(
            "csms_handshake_phase_seconds",
            "Time a station handshake spends in each phase (slot: waiting for a handshake slot; check: path,"
            " subprotocol, credentials; claim: etcd owner key; fence: Postgres fence and protocol; accept: upgrade)",
            ["phase"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.etcd_seconds = Histogram(
            "csms_etcd_request_duration_seconds",
            "etcd gateway request latency",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.etcd_errors = Counter("csms_etcd_errors_total", "Failed etcd requests", ["operation"], registry=r)
        self.site_limit = Gauge(
            "csms_site_limit", "A site's limit in force now, in its unit (A per phase or W)", ["site"], registry=r
        )
        self.site_allocated = Gauge(
            "csms_site_allocated",
            "What a site's stations may draw by the safety rules (held limits; stuck stations at max), in its unit",
            ["site"],
            registry=r,
        )
        self.site_measured = Gauge(
            "csms_site_measured_draw", "A site's draw measured from meter values, in its unit", ["site"], registry=r
        )
        self.site_charging = Gauge("csms_site_stations_charging", "Stations charging on a site", ["site"], registry=r)
        self.site_capped = Gauge(
            "csms_site_stations_capped",
            "Charging stations held below their max by a site's limit",
            ["site"],
            registry=r,
        )
        self.site_reallocated = Gauge(
            "csms_site_last_reallocation_timestamp_seconds",
            "When a site's allocations last changed (Unix time)",
            ["site"],
            registry=r,
        )
        self.site_round_seconds = Histogram(
            "csms_site_round_duration_seconds",
            "One load-management round of a site that changed allocations: read, lower, confirm, raise",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.commands = Counter(
            "csms_commands_total",
            "Operator commands, by action and outcome",
            ["action", "outcome"],
            registry=r,
        )
        self.tls_reloads = Counter(
            "csms_tls_reloads_total",
            "Certificate file changes picked up (or not) for new handshakes",
            ["outcome"],
            registry=r,
        )
        self.station_certificate_expiry = Gauge(
            "csms_station_certificate_expiry_seconds",
            "Seconds until the soonest-expiring certificate in the station certificate inventory expires",
            registry=r,
        )
        self.station_certificates_expiring = Gauge(
            "csms_station_certificates_expiring",
            "Station certificates in the inventory expiring within CSMS_CERTIFICATE_EXPIRY_WARNING_DAYS",
            registry=r,
        )
        self.outbox_sequence = Gauge(
            "csms_outbox_sequence", "Highest outbox sequence number allocated (rate: events written/s)", registry=r
        )
        self.export_active = Gauge(
            "csms_export_active",
            "1 while this replica runs the sink's exporter (one per cluster)",
            ["sink"],
            registry=r,
        )
        self.events_exported = Counter("csms_events_exported_total", "Events a sink acknowledged", ["sink"], registry=r)
        self.export_lag = Gauge(
            "csms_export_lag_seconds",
            "Age of the newest event a sink acknowledged, at acknowledgement (0 when caught up)",
            ["sink"],
            registry=r,
        )
        self.export_failures = Counter(
            "csms_export_failures_total", "Failed deliveries (each retry counts)", ["sink"], registry=r
        )
        self.export_dead_letters = Gauge(
            "csms_export_dead_letters", "Dead letters not yet replayed, per sink", ["sink"], registry=r
        )
        self.export_lag_events = Gauge(
            "csms_export_lag_events", "Events in the outbox a sink has not acknowledged yet", ["sink"], registry=r
        )
        self.partition_maintenance = Counter(
            "csms_partition_maintenance_total",
            "Partition maintenance by the leader, by table and action (created, dropped, archived, failed)",
            ["table", "action"],
            registry=r,
        )

    def certificates_expiring(self, count: int, soonest_seconds: float | None) -> None:
        self.station_certificates_expiring.set(count)
        if soonest_seconds is not None:
            self.station_certificate_expiry.set(soonest_seconds)

    def tls_reloaded(self, ok: bool) -> None:
        self.tls_reloads.labels("loaded" if ok else "failed").inc()


class RpcMetrics:
    """The RPC layer's observer. Called for every OCPP message, so the labelled children are cached: a
    ``.labels(...)`` lookup (lock, validation, tuple keys) costs more than the increment itself. The RPC layer
    bounds the label values (unknown actions are folded), so the caches stay small."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    def _observe(self, direction: str, action: str, outcome: str, seconds: float) -> None:
        key = (direction, action, outcome)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self._m.messages.labels(direction, action, outcome)
        counter.inc()
        histogram = self._histograms.get(key[:2])
        if histogram is None:
            histogram = self._histograms[key[:2]] = self._m.message_seconds.labels(direction, action)
        histogram.observe(seconds)

    def on_incoming(self, action: str, outcome: str, seconds: float) -> None:
        self._observe("in", action, outcome, seconds)

    def on_outgoing(self, action: str, outcome: str, seconds: float) -> None:
        self._observe("out", action, outcome, seconds)


class GatewayMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def connection_opened(self) -> None:
        self._m.stations_connected.inc()

    def connection_closed(self) -> None:
        self._m.stations_connected.dec()

    def handshake_refused(self, status: int) -> None:
        self._m.handshake_refusals.labels(str(status)).inc()

    def handshake_phase(self, phase: str, seconds: float) -> None:
        self._m.handshake_phase_seconds.labels(phase).observe(seconds)

    def password_hashed(self, ok: bool) -> None:
        self._m.password_hashes.labels("ok" if ok else "failed").inc()

    def auth_throttled(self, scope: str) -> None:
        self._m.auth_throttled.labels(scope).inc()


class GcPauseMetrics:
    """Adapts csms_gc_pause_seconds to the gc-pause observer (label children bound once: it runs per collection)."""

    def __init__(self, metrics: Metrics) -> None:
        self._by_generation = [metrics.gc_pause.labels(str(g)) for g in range(3)]

    def observe(self, generation: int, seconds: float) -> None:
        self._by_generation[generation].observe(seconds)


class SlowStepMetrics:
    """Adapts csms_slow_task_step_seconds to the slow-step instrument."""

    def __init__(self, metrics: Metrics) -> None:
        self._histogram = metrics.slow_task_steps

    def observe(self, task_name: str, seconds: float) -> None:
        self._histogram.labels(task_name).observe(seconds)
