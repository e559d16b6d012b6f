"""CSMS: an OCPP charging station management system, run as N identical trio replicas."""
