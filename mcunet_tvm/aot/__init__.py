"""Ahead-of-time emission: the model's C (constants in flash, one arena, the entry point) from the IR's view."""
