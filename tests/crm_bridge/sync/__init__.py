"""Tests of the CRM sync: CSV import and export of companies and contacts."""
