"""Engine, sessions, the declarative Base and shared column types."""

from cityhealth.db.base import Base
from cityhealth.db.engine import Database, async_url
from cityhealth.db.types import UTCDateTime

__all__ = ["Base", "Database", "UTCDateTime", "async_url"]
