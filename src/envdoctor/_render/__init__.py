"""Renderers: one per format, each takes a result and returns a str; only the CLI prints."""
