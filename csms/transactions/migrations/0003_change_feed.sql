-- Change-feed triggers (storage's csms_notify_change) for the live console, and the indexes of its session
-- filters: by id tag, and energy delivered today (stops by time).
CREATE TRIGGER transactions_notify AFTER INSERT OR UPDATE ON transactions
    FOR EACH ROW EXECUTE FUNCTION csms_notify_change('tx');
CREATE TRIGGER meter_values_notify AFTER INSERT ON meter_values
    FOR EACH ROW EXECUTE FUNCTION csms_notify_change('meter');
CREATE INDEX IF NOT EXISTS transactions_id_tag ON transactions (id_tag, id DESC);
CREATE INDEX IF NOT EXISTS transactions_stopped ON transactions (stop_received_at) WHERE stop_received_at IS NOT NULL;
