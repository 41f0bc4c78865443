"""The version of mlrig-orchestration, written only here: hatchling reads it at build time,
``mlrig.orchestration`` imports it."""

__version__ = "0.1.0"
