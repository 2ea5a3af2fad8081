"""Scenarios: a validated, serialisable description of edits, forcing and models (built by issue 10)."""
