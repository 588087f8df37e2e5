"""The gateway API (/api/v1): routers, dependencies, roles, data scope, errors; `gateway.web` builds the app."""
