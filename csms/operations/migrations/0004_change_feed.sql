-- Change-feed triggers (storage's csms_notify_change): reservations, profiles and configuration on the console.
CREATE TRIGGER reservations_notify AFTER INSERT OR UPDATE OR DELETE ON reservations
    FOR EACH ROW EXECUTE FUNCTION csms_notify_change('ops');
CREATE TRIGGER charging_profiles_notify AFTER INSERT OR UPDATE OR DELETE ON charging_profiles
    FOR EACH ROW EXECUTE FUNCTION csms_notify_change('ops');
CREATE TRIGGER station_configuration_notify AFTER INSERT OR UPDATE OR DELETE ON station_configuration
    FOR EACH ROW EXECUTE FUNCTION csms_notify_change('ops');
