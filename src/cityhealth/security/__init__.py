"""Principals, authentication, authorization, the audit trail, field encryption and masking."""
