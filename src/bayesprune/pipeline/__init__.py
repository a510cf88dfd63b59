"""Grids of runs through the parameterized notebooks: profiles, execution, tidy tables, provenance."""
