"""Object rules of the hotline room's read routes (docs/security.md, 'Adding an endpoint')."""

import tests.hotline.object_rules_knowledge  # noqa: F401
