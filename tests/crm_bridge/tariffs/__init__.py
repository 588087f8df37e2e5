"""Tariff and billing tests."""
