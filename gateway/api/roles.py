"""The API's side of the role rule: the dependency that answers 403 unless the caller's role holds a capability.

The rule itself (capabilities and the roles holding them) is `gateway/auth/roles.py`, shared with the portal and
the use cases. Which *customers* a caller sees is the other half, in `gateway/api/scope.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from fastapi import Depends

from gateway.api.deps import CurrentPrincipal
from gateway.api.errors import forbidden
from gateway.auth import Principal
from gateway.auth.roles import GRANTS, Capability, Role, allowed, capabilities_of


@cache
def require(capability: Capability) -> Callable[[Principal], Principal]:
    """A dependency answering 403 unless the caller's role holds `capability` (401 when nobody is logged in)."""

    def check(p: CurrentPrincipal) -> Principal:
        if not allowed(p.role, capability):
            roles = ", ".join(sorted(GRANTS[capability]))
            raise forbidden(f"role {p.role} may not use this ({capability.value}); allowed: {roles}")
        return p

    check.__name__ = f"require_{capability.value}"
    return check


def needs(capability: Capability) -> Any:
    """For `dependencies=[needs(Capability.X)]` on a router or route."""
    return Depends(require(capability))


__all__ = ["GRANTS", "Capability", "Role", "allowed", "capabilities_of", "needs", "require"]
