"""Exporters: the compiled integer program in other formats."""
