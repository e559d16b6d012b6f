-- Change-feed trigger (storage's csms_notify_change): a command's request and its answer reach every console.
CREATE TRIGGER commands_notify AFTER INSERT OR UPDATE ON commands
    FOR EACH ROW EXECUTE FUNCTION csms_notify_change('command');
