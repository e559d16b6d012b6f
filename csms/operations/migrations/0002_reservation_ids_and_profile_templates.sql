-- Reservations: a paging cursor, look-up by the OCPP reservationId, and server-assigned reservationIds.
-- row_id orders the list and is its `before` cursor; it is not the OCPP reservationId (only unique per station).
ALTER TABLE reservations ADD COLUMN row_id bigint GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX reservations_row_id ON reservations (row_id);
CREATE INDEX reservations_reservation_id ON reservations (reservation_id);

-- A ReserveNow sent without reservationId gets the next id no station has on record: unique across the
-- cluster (one sequence in Postgres), within the int32 range of the column and of most firmware.
CREATE SEQUENCE reservation_ids AS integer MINVALUE 1 MAXVALUE 2147483647 NO CYCLE;
CREATE FUNCTION next_reservation_id() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    candidate integer;
BEGIN
    LOOP
        candidate := nextval('reservation_ids');
        EXIT WHEN NOT EXISTS (SELECT 1 FROM reservations WHERE reservation_id = candidate);
    END LOOP;
    RETURN candidate;
END
$$;

-- Named csChargingProfiles (OCPP 1.6) that SetChargingProfile may reference instead of an inline profile.
-- A template without its own chargingProfileId is sent with default_profile_id: stable per template (sending it
-- again replaces the station's earlier copy) and far above hand-picked ids, which it would otherwise replace.
CREATE SEQUENCE charging_profile_template_ids AS integer START WITH 1000000000 MINVALUE 1000000000
    MAXVALUE 2147483647 NO CYCLE;
CREATE TABLE charging_profile_templates (
    name                text PRIMARY KEY,
    profile             jsonb NOT NULL,
    default_profile_id  integer NOT NULL DEFAULT nextval('charging_profile_template_ids'),
    updated_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
