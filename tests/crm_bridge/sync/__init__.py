"""Tests of the CRM sync: CSV import and export of customers and contacts."""
