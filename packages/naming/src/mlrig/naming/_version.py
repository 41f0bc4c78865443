"""The version of mlrig-naming, written only here: hatchling reads it at build time,
``mlrig.naming`` imports it."""

__version__ = "0.1.0"
