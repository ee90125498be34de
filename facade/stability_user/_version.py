"""The distribution's version, kept apart so that ``--version`` imports nothing else."""

__all__ = ["__version__"]

__version__ = "0.3.0"
