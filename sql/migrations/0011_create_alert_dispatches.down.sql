DROP TABLE IF EXISTS alert_dispatches
