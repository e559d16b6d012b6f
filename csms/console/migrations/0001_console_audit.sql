-- The console module's table: what operators did through the console besides OCPP commands (which the commands
-- module records): sign-in and sign-out, id-tag changes. Who (role and token fingerprint), when, with result.
CREATE TABLE console_audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    target      text NOT NULL DEFAULT '',
    outcome     text NOT NULL,
    detail      jsonb
);
CREATE INDEX console_audit_at ON console_audit (id DESC);
