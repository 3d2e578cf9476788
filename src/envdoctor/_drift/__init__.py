"""API drift: the rules that lint, explain and compat share, and their interpreters."""
