"""Embed views: how many times a fund's /embed box was shown, per day and fund. Nothing about
the reader (no cookie, no address): a count."""

from __future__ import annotations

from datetime import date

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from donations.extensions import Base


class EmbedView(Base):
    __tablename__ = "embed_views"

    day: Mapped[date] = mapped_column(primary_key=True)  # in NEWSROOM_TIMEZONE
    fund_id: Mapped[int] = mapped_column(ForeignKey("funds.id"), primary_key=True)
    views: Mapped[int]
