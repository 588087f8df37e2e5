"""Service desk: one tracked workflow for requests and complaints, tier-based targets, statistics."""

from crm_bridge.desk.workflow import (
    NEXT,
    Due,
    GroupStats,
    InvalidTransitionError,
    TicketError,
    add_comment,
    assign,
    create_ticket,
    desk_stats,
    due,
    list_tickets,
    transition,
)

__all__ = ["NEXT", "Due", "GroupStats", "InvalidTransitionError", "TicketError", "add_comment", "assign",
           "create_ticket", "desk_stats", "due", "list_tickets", "transition"]
