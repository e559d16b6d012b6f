-- Change feed (see storage 0004): id-tag changes reach every open console ("idtag <id tag>").
CREATE OR REPLACE FUNCTION id_tags_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('csms_changes', 'idtag ' || CASE WHEN TG_OP = 'DELETE' THEN OLD.id_tag ELSE NEW.id_tag END);
    RETURN NULL;
END $$;
CREATE TRIGGER id_tags_notify AFTER INSERT OR UPDATE OR DELETE ON id_tags
    FOR EACH ROW EXECUTE FUNCTION id_tags_notify_change();
CREATE INDEX id_tags_parent ON id_tags (parent_id_tag) WHERE parent_id_tag IS NOT NULL;
