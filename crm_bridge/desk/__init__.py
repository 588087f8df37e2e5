"""Service desk: one tracked workflow for requests and complaints, tier-based targets, statistics."""

from crm_bridge.desk.workflow import (
    InvalidTransitionError,
    TicketError,
    create_ticket,
    desk_stats,
    list_tickets,
    transition,
)

__all__ = ["InvalidTransitionError", "TicketError", "create_ticket", "desk_stats", "list_tickets", "transition"]
