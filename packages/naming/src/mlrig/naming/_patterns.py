"""Regular expressions shared by the context, run-name and tag modules."""

from __future__ import annotations

import re

# A hash or fingerprint as naming accepts it: 8-64 lowercase hex characters (sha256 prefixes).
HEX_ID = re.compile(r"[0-9a-f]{8,64}")
# ASCII control characters, never allowed in run names or identity tags.
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
