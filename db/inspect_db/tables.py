"""The tables as SQLAlchemy Core handles, for the queries of every feature (reports, the
registry, review storage): one short name each, typed as tables."""

from __future__ import annotations

from inspect_db.models import (
    InspectionRecord,
    Model,
    RegionRecord,
    Review,
    ReviewMark,
    ReviewRegion,
    ReviewUser,
    Station,
    table_of,
)

I = table_of(InspectionRecord)  # noqa: E741
R = table_of(RegionRecord)
S = table_of(Station)
M = table_of(Model)
RV = table_of(Review)
RL = table_of(ReviewRegion)
U = table_of(ReviewUser)
MK = table_of(ReviewMark)
