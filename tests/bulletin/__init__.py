"""The bulletin API's route declarations (its tests live in tests/reporting)."""
