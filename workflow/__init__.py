"""Procedures and rules: definitions, guards, deadlines and the move engine (no SQL here)."""
