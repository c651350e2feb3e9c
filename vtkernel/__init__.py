"""vtkernel: a Jupyter kernel hosting a live-coded, real-time engine."""

__version__ = "0.1.0"
