"""Forecasting tests."""
