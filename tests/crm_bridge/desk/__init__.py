"""Tests of the service desk."""
