"""One router per resource of the gateway API, all under /api/v1."""
