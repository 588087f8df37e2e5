"""Tests of the time-series stores."""
