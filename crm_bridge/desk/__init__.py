"""Service desk: one tracked workflow for requests and complaints, tier-based targets, statistics."""

from crm_bridge.desk.workflow import (
    NEXT,
    InvalidTransitionError,
    TicketError,
    create_ticket,
    desk_stats,
    list_tickets,
    transition,
)

__all__ = ["NEXT", "InvalidTransitionError", "TicketError", "create_ticket", "desk_stats", "list_tickets", "transition"]
