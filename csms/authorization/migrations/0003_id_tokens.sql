-- OCPP 2.0.1 IdTokens (issue 10): up to 36 characters, and a token type. A NULL type matches any type the
-- station presents (every 1.6 tag), a set one only that type.
ALTER TABLE id_tags DROP CONSTRAINT id_tags_id_tag_check;
ALTER TABLE id_tags ADD CONSTRAINT id_tags_id_tag_check CHECK (length(id_tag) BETWEEN 1 AND 36);
ALTER TABLE id_tags DROP CONSTRAINT id_tags_parent_id_tag_check;
ALTER TABLE id_tags ADD CONSTRAINT id_tags_parent_id_tag_check CHECK (length(parent_id_tag) BETWEEN 1 AND 36);
ALTER TABLE id_tags ADD COLUMN token_type text CHECK (token_type IN
    ('Central', 'eMAID', 'ISO14443', 'ISO15693', 'KeyCode', 'Local', 'MacAddress', 'NoAuthorization'));
