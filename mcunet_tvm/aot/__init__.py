"""Ahead-of-time compilation: the integer Relax module as an ordered program, emitted as C."""
