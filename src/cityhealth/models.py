"""Every domain's tables on one metadata, for migrations and schema checks. Top layer only."""

from cityhealth.booking import models as booking_models  # noqa: F401 - registers the tables
from cityhealth.collection import models as collection_models  # noqa: F401 - registers the tables
from cityhealth.db.base import Base
from cityhealth.hotline import knowledge_models as hotline_knowledge_models  # noqa: F401 - registers the tables
from cityhealth.hotline import models as hotline_models  # noqa: F401 - registers the tables
from cityhealth.hotline import work_order_models as hotline_work_order_models  # noqa: F401 - registers the tables
from cityhealth.records import chronic_models as records_chronic_models  # noqa: F401 - registers the tables
from cityhealth.records import family_models as records_family_models  # noqa: F401 - registers the tables
from cityhealth.records import models as records_models  # noqa: F401 - registers the tables
from cityhealth.registry import models as registry_models
from cityhealth.reporting import models as reporting_models  # noqa: F401 - registers the table
from cityhealth.security import models as security_models
from cityhealth.telemed import ecg_models as telemed_ecg_models  # noqa: F401 - registers the table
from cityhealth.telemed import imaging_models as telemed_imaging_models  # noqa: F401 - registers the tables
from cityhealth.telemed import lab_models as telemed_lab_models  # noqa: F401 - registers the tables
from cityhealth.telemed import models as telemed_models  # noqa: F401 - registers the tables
from cityhealth.telemed import pathology_models as telemed_pathology_models  # noqa: F401 - registers the tables
from cityhealth.telemed import statistics_models as telemed_statistics_models  # noqa: F401 - registers the table

metadata = Base.metadata

__all__ = ["metadata", "registry_models", "security_models"]
