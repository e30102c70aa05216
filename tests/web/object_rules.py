"""Object rules of the web pages: the one page that shows records, behind an operator login."""

from __future__ import annotations

from tests.security.objects import not_object_scoped

not_object_scoped(
    "GET", "/dashboard/quality/units/{organization_id}/rejections",
    "collection.read is platform-wide: a data-quality operator sees every unit's rejected records, as "
    "GET /api/collection/jobs/{job_id}/rejections shows any job's to a collection reader",
)
