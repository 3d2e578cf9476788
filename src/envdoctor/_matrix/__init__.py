"""Matrices: the file format (schema), the compiled model, loading, merging and caching."""
