"""Collector tests against real protocol servers on loopback."""
