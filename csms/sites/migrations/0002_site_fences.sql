-- Site fence tokens (issue 15 item 4): each time a replica takes a site it gets the next token here, and every
-- site-state write and every profile sent for the site carries it; a write or send whose token is no longer the
-- site's current one is refused, so a replica that lost the site (paused past its lease) cannot act for it.
CREATE TABLE site_fences (
    site_id     text PRIMARY KEY,
    fence       bigint NOT NULL,
    node_id     text NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now()
);
