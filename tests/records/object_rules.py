"""Object rules of the records room's read endpoints (docs/security.md, 'Adding an endpoint')."""

from __future__ import annotations

import tests.records.object_rules_family  # noqa: F401 - family doctors declare their own routes
