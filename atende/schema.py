"""The whole database schema: every package's tables in `Base.metadata`.

A package's tables join the metadata when its models module is imported. The core's own modules never import the
packages above them, so the schema is gathered here, in the application shell, for Alembic and for comparisons of
the migrations with the models.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from channels.whatsapp import models as _whatsapp_models  # noqa: F401
from conversation import models as _conversation_models  # noqa: F401
from core.accounts import models as _accounts_models  # noqa: F401
from core.lgpd import models as _lgpd_models  # noqa: F401
from core.models import Base
from domain import models as _domain_models  # noqa: F401
from handoff import models as _handoff_models  # noqa: F401
from handoff import saved_replies as _saved_reply_models  # noqa: F401

metadata: MetaData = Base.metadata
