-- Fence tokens in one domain (issue 9 item 0). Coordinator revisions (etcd revisions, a lone node's counter)
-- are only comparable inside one coordinator domain, and etcd's restart at 1 when etcd is rebuilt. So a claim
-- is now ordered by (epoch, revision), where the epoch is issued here, once per domain and in the order the
-- domains were first seen; and the fence that writes carry is allocated here (previous + 1), so it grows per
-- station whatever coordinator issued the claim.
CREATE TABLE fence_epochs (
    epoch      bigserial   PRIMARY KEY,
    domain     text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE station_fences
    ADD COLUMN epoch    bigint NOT NULL DEFAULT 0,
    ADD COLUMN revision bigint NOT NULL DEFAULT 0;

-- Existing rows: their fence was the coordinator's revision, in epoch 0 (older than every domain from now on);
-- their fence stays as it is, so writes under it keep committing until the next claim.
UPDATE station_fences SET revision = fence;
