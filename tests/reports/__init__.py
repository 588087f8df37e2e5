"""Report and export tests."""
