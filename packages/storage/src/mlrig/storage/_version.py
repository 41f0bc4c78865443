"""The version of mlrig-storage, written only here: hatchling reads it at build time,
``mlrig.storage`` imports it."""

__version__ = "0.1.0"
