"""Tests of the CRM registry."""
