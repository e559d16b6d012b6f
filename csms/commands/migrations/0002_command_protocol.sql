-- The protocol a command was validated for and sent in (OCPP 2.0.1 arrives beside 1.6). Every command recorded
-- before this migration was an OCPP 1.6 command.
ALTER TABLE commands ADD COLUMN protocol text NOT NULL DEFAULT 'ocpp1.6';
