"""Matrices: one definition per rule kind, loading, merging and caching.

model.py (and gpu.py) are the one definition: frozen dataclasses whose fields carry their docs and
constraints, and whose `section()` fields make the registry of rule kinds (kinds.py) that merging
(validate.py), `matrix show`, `matrix diff` (diff.py), the evidence check and `check` iterate. schema.py
derives the pydantic file format from them on the cold path; loader.py finds, validates once and caches.
A new rule kind: a rule class and its `section()` field here, and its checker in `_check` (or a line in
`_check.registry.ELSEWHERE` naming the command that reads it).
"""
