"""The version of mlrig-paths, written only here: hatchling reads it at build time,
``mlrig.paths`` imports it."""

__version__ = "0.1.0"
