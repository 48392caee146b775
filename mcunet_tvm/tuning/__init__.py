"""Schedule tuning of the SIMD kernels: a database of measurements and the tuner that fills it."""

from .database import TuningDatabase
from .tuner import tune_program

__all__ = ["TuningDatabase", "tune_program"]
