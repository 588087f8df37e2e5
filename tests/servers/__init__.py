"""Real servers (influxd, PostgreSQL) started by the test fixtures on free loopback ports."""
