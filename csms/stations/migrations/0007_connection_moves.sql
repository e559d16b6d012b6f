-- The replica that held the station's previous connection (NULL: none on record, or written before this column),
-- recorded with the connection: the cluster page counts moves per minute with one range scan of the last hour
-- instead of a window over every station's connections in it.
ALTER TABLE station_connections ADD COLUMN previous_node_id text;
