"""The local gateway's own state: what Stripe would keep on its side, never the ledger's."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from donations.extensions import Base


class LocalCard(Base):
    """The card on file that renews a local membership: "4242" pays, "0002" declines."""

    __tablename__ = "local_cards"

    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"), primary_key=True)
    last4: Mapped[str] = mapped_column(String(4))
