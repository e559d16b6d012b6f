-- The change feed between replicas: modules' triggers call this to NOTIFY `csms_changes` with "<kind> <station id>"
-- when a station's rows change. Postgres delivers it at COMMIT to every replica that LISTENs (only replicas with
-- an operator console open do), and folds identical payloads within one transaction (one per station per batch).
CREATE OR REPLACE FUNCTION csms_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('csms_changes', TG_ARGV[0] || ' ' || OLD.station_id);
    ELSE
        PERFORM pg_notify('csms_changes', TG_ARGV[0] || ' ' || NEW.station_id);
    END IF;
    RETURN NULL;
END $$;
