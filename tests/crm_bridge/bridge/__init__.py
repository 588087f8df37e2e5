"""Tests of the bridge out: e-mail, webhooks, CSV import/export."""
