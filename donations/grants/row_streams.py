"""Report rows as streams: fetched in batches through a server-side cursor (memory holds one
batch, whatever the total), grouped by donor, and walked together by donor."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Row, Select

from donations.extensions import db

BATCH = 2000  # rows per fetch from the server-side cursor

AnyRow = Row[*tuple[Any, ...]]
Group = tuple[int, list[AnyRow]]


def stream(stmt: Select[*tuple[Any, ...]]) -> Iterator[AnyRow]:
    """Rows in batches through a server-side cursor: memory holds one batch, whatever the total.

    Executed by Core on the session's connection: these are plain columns, and the ORM's result
    handling would cost about a quarter of a large report."""
    yield from db.session.connection().execute(stmt, execution_options={"yield_per": BATCH})


_OWNER = operator.itemgetter(0)  # every stream grouped by donor has the owner as its first column


def by_owner(rows: Iterable[AnyRow]) -> Iterator[Group]:
    for owner, group in itertools.groupby(rows, key=_OWNER):
        yield owner, list(group)


def merge_by_owner(
    main: Iterable[Group], *sides: Iterable[Group]
) -> Iterator[tuple[int, list[AnyRow], list[list[AnyRow]]]]:
    """Walk streams sorted by owner together: each of `main`'s donors with its rows from `sides`."""
    side_iters = [iter(side) for side in sides]
    heads: list[Group | None] = [next(it, None) for it in side_iters]
    for owner, rows in main:
        extra: list[list[AnyRow]] = []
        for index, it in enumerate(side_iters):
            head = heads[index]
            while head is not None and head[0] < owner:
                head = next(it, None)
            if head is not None and head[0] == owner:
                extra.append(head[1])
                head = next(it, None)
            else:
                extra.append([])
            heads[index] = head
        yield owner, rows, extra
