"""What identity lets other domains put in their own statements: users' public names.

A task read embeds its assignee's name; joining it into the task's statement
costs nothing where asking identity's service for the names would cost a
second query. Only the id and the name are exposed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, FromClause

from keel.identity.users.models import User


@dataclass(frozen=True)
class NameColumns:
    source: FromClause
    id: ColumnElement[uuid.UUID]
    name: ColumnElement[str]


def joinable_names(alias: str) -> NameColumns:
    """Users' (id, name) under ``alias``, to outer-join on a user id column."""
    users = User.__table__.alias(alias)
    return NameColumns(source=users, id=users.c.id, name=users.c.name)
