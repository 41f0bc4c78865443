"""The version of mlrig-tracking, written only here: hatchling reads it at build time,
``mlrig.tracking`` imports it."""

__version__ = "0.1.0"
