"""Time-series stores: the embedded SQLite default and InfluxDB (API v1 and v2)."""
