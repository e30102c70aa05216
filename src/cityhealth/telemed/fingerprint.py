"""What a request with a client's key said, as a digest: the same key again with another digest is a changed
request (409), with the same one a retry. One rule for the room's cases, consultations and pathology."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel


def fingerprint(data: BaseModel) -> str:
    """The request body's digest, independent of key order."""
    return hashlib.sha256(json.dumps(data.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
