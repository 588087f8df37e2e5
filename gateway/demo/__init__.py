"""`energy-gateway demo`: the simulated plants' run, their backfilled history and the demo business data."""
