-- Who asked: `requested_by` now names the token or console user (token:<name>, console:<name>, csms:<job>);
-- the role that token held at the time is kept beside it. Rows recorded before this migration have no role here
-- (their requested_by was token:<role> or console:<role>:<fingerprint>).
ALTER TABLE commands ADD COLUMN requested_role text;
