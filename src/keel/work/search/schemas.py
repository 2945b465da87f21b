from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel

SearchKind = Literal["task", "project", "report", "bookmark"]


class SearchHit(BaseModel):
    """A task, project, report or bookmark matching every word, with its relevance."""

    kind: SearchKind
    id: uuid.UUID
    title: str
    rank: float
