"""Tests of the notifications out: e-mail and signed webhooks, dead letters."""
