"""Registry REST API (being built)."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/registry", tags=["registry"])
