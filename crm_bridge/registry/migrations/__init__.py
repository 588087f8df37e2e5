"""Alembic migrations of the CRM registry (shipped with the package)."""
