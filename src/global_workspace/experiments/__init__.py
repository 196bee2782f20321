"""Experiments built from many workspaces: semi-supervision, downstream tasks, efficiency, reports."""
