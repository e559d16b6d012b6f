-- The authorization module's tables: id tags with status, expiry and parent (group) id tag.
CREATE TABLE id_tags (
    id_tag          text PRIMARY KEY CHECK (length(id_tag) BETWEEN 1 AND 20),
    status          text NOT NULL CHECK (status IN ('Accepted', 'Blocked', 'Expired', 'Invalid', 'ConcurrentTx')),
    expiry_date     timestamptz,
    parent_id_tag   text CHECK (length(parent_id_tag) BETWEEN 1 AND 20),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
