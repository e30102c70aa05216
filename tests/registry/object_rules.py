"""Object rules of the registry's medical e-map routes (the rest of the registry's are in tests/security)."""

from __future__ import annotations

from tests.security.objects import not_object_scoped

not_object_scoped("GET", "/api/registry/organizations/{organization_id}/facility",
                  "registry reference data: a facility's public profile, the same for every holder of registry.read")
