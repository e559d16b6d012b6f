-- station.ownership_moved.v1: every newly recorded fence token (a replica claimed a station) is an event in the
-- claim's own transaction. A trigger because storage records fences in bulk statements below every module;
-- an idempotent re-record of the same token changes nothing and so emits nothing.
CREATE FUNCTION outbox_ownership_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (aggregatetype, aggregateid, type, station_id, payload)
    VALUES ('station', NEW.station_id, 'csms.station.ownership_moved.v1', NEW.station_id,
            jsonb_build_object('station_id', NEW.station_id, 'node_id', NEW.node_id, 'fence_token', NEW.fence));
    RETURN NULL;
END $$;
CREATE TRIGGER station_fences_claimed AFTER INSERT ON station_fences
    FOR EACH ROW EXECUTE FUNCTION outbox_ownership_moved();
CREATE TRIGGER station_fences_moved AFTER UPDATE ON station_fences
    FOR EACH ROW WHEN (OLD.fence IS DISTINCT FROM NEW.fence) EXECUTE FUNCTION outbox_ownership_moved();
