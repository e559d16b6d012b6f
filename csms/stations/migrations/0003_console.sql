-- The operator console's fleet view. Where each station is connected now (one row per station, written when a
-- replica accepts or loses its connection) and every connection over time (ownership moves, takeovers); the
-- indexes behind the station list's filters and sorts at 100,000 stations; and the change-feed triggers.
-- No index on last_seen_at: it changes with station traffic and would turn those updates non-HOT.
CREATE TABLE station_presence (
    station_id      text PRIMARY KEY,
    node_id         text NOT NULL,
    connection_id   text NOT NULL,
    protocol        text NOT NULL,
    connected_at    timestamptz NOT NULL,
    disconnected_at timestamptz,
    close_reason    text
);
CREATE INDEX station_presence_node ON station_presence (node_id) WHERE disconnected_at IS NULL;

CREATE TABLE station_connections (
    id              bigserial PRIMARY KEY,
    station_id      text NOT NULL,
    node_id         text NOT NULL,
    connection_id   text NOT NULL UNIQUE,
    protocol        text NOT NULL,
    connected_at    timestamptz NOT NULL,
    disconnected_at timestamptz,
    close_reason    text
);
CREATE INDEX station_connections_station ON station_connections (station_id, id DESC);
CREATE INDEX station_connections_time ON station_connections (connected_at);

CREATE INDEX stations_id_prefix ON stations (id text_pattern_ops);
CREATE INDEX stations_vendor_model ON stations (vendor, model, id);
CREATE INDEX stations_firmware ON stations (firmware_version, id);
CREATE INDEX connector_status_charging ON connector_status (station_id) WHERE status = 'Charging';
CREATE INDEX connector_status_faulted ON connector_status (station_id)
    WHERE status = 'Faulted' OR error_code <> 'NoError';
CREATE INDEX station_notifications_time ON station_notifications (received_at);

CREATE OR REPLACE FUNCTION stations_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('csms_changes', 'station ' || CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
    RETURN NULL;
END $$;
CREATE TRIGGER stations_notify_rows AFTER INSERT OR DELETE ON stations
    FOR EACH ROW EXECUTE FUNCTION stations_notify_change();
-- Not for heartbeats (last_seen_at alone): what an operator sees of a station changed.
CREATE TRIGGER stations_notify_update AFTER UPDATE ON stations FOR EACH ROW
    WHEN ((OLD.vendor, OLD.model, OLD.firmware_version, OLD.last_boot_at, OLD.boot_status, OLD.description)
          IS DISTINCT FROM (NEW.vendor, NEW.model, NEW.firmware_version, NEW.last_boot_at, NEW.boot_status,
                            NEW.description))
    EXECUTE FUNCTION stations_notify_change();
CREATE TRIGGER connector_status_notify AFTER INSERT OR UPDATE ON connector_status
    FOR EACH ROW EXECUTE FUNCTION csms_notify_change('status');
CREATE TRIGGER station_notifications_notify AFTER INSERT ON station_notifications
    FOR EACH ROW EXECUTE FUNCTION csms_notify_change('notice');
CREATE TRIGGER station_presence_notify AFTER INSERT OR UPDATE ON station_presence
    FOR EACH ROW EXECUTE FUNCTION csms_notify_change('presence');
CREATE INDEX connector_status_history_faults ON connector_status_history (id)
    WHERE status = 'Faulted' OR error_code <> 'NoError';
