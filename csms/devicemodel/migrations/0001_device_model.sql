-- The device model module's tables: what OCPP 2.0.1 stations report about their components and variables.

-- One row per variable of a component (the identity OCPP uses: component name/instance/EVSE/connector and
-- variable name/instance; '' and NULL stand for "not given"). Characteristics and attributes are kept as the
-- station reported them (camelCase OCPP fields): attributes is {"Actual": {...}, "Target": {...}, ...}, each
-- with value, mutability, persistent, constant, plus source (NotifyReport, GetVariables or SetVariables).
CREATE TABLE device_variables (
    id                  bigserial PRIMARY KEY,
    station_id          text NOT NULL,
    component           text NOT NULL,
    component_instance  text NOT NULL DEFAULT '',
    evse_id             integer,
    connector_id        integer,
    variable            text NOT NULL,
    variable_instance   text NOT NULL DEFAULT '',
    characteristics     jsonb,
    attributes          jsonb NOT NULL DEFAULT '{}',
    report_request_id   integer,      -- the report that last described it (NULL: only Get/SetVariables did)
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX device_variables_identity ON device_variables (station_id, component, component_instance,
    (coalesce(evse_id, -1)), (coalesce(connector_id, -1)), variable, variable_instance);
CREATE INDEX device_variables_by_variable ON device_variables (station_id, variable, id);

-- The reports an operator asked for (GetBaseReport / GetReport, by requestId) and the NotifyReport parts that
-- answered them. A report is complete once the part with tbc = false and every seqNo before it arrived.
CREATE TABLE device_model_reports (
    station_id    text NOT NULL,
    request_id    integer NOT NULL,
    action        text,           -- GetBaseReport or GetReport; NULL: a report nobody here asked for
    command_id    bigint,
    request       jsonb,          -- the operator's request payload (reportBase or criteria)
    answer        text,           -- the station's status: Accepted, Rejected, NotSupported, EmptyResultSet
    seq_nos       integer[] NOT NULL DEFAULT '{}',
    last_seq_no   integer,        -- the seqNo of the part with tbc = false
    variables     integer NOT NULL DEFAULT 0,   -- reportData entries received
    generated_at  timestamptz,
    requested_at  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, request_id)
);
