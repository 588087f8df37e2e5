"""Tests of the command-line tools in gateway/ (thin wrappers over collectors and the other packages)."""
