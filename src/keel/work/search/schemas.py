from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel

SearchKind = Literal["task", "project", "report", "bookmark"]


class SearchHit(BaseModel):
    kind: SearchKind
    id: uuid.UUID
    title: str
    rank: float
