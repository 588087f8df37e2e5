"""Tests of the composition root: config, outbox, pipeline, query layer, CLI, demo."""
