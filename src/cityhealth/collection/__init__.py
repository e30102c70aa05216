"""Data collection: the upload forms, validation, idempotent storage and data-quality metrics."""
