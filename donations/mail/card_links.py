"""The "update your card" link of a failed-payment email (dunning).

It names one membership and carries a keyed hash of the email it went to (never the address:
links end up in logs), signed with its own salt and valid CARD_LINK_MAX_AGE. It signs no one
in: it opens only the page that fixes that membership's card (Stripe's Billing Portal, or the
local gateway's card form), so it may outlive a sign-in link while Stripe retries the payment.
It dies when the donor's email changes or is erased.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from donations.extensions import db
from donations.ledger.models import Donor, Membership

CARD_LINK_SALT = "membership-card-link"
CARD_LINK_PREFIX = "/membership/card/"


class CardLinkInvalid(ValueError):
    """Not a link we sent, or no longer valid (the email changed, the membership is gone)."""


class CardLinkExpired(CardLinkInvalid):
    pass


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=CARD_LINK_SALT)


def _email_check(donor: Donor) -> str:
    secret = current_app.config["SECRET_KEY"]
    key = (secret if isinstance(secret, bytes) else str(secret).encode()) + CARD_LINK_SALT.encode()
    return hmac.new(key, donor.email_key.encode(), hashlib.sha256).hexdigest()[:32]


def card_link_token(membership: Membership) -> str:
    return _serializer().dumps({"membership": membership.id, "email": _email_check(membership.donor)})


def card_link_path(membership: Membership) -> str:
    """The link's path, served by the giving blueprint (`membership.fix_card`). Written out:
    mail is built by the worker, outside any request, where url_for has no host to build on."""
    return f"{CARD_LINK_PREFIX}{card_link_token(membership)}"


def read_card_token(token: str) -> Membership:
    """The membership whose card the link fixes. Raises CardLinkExpired or CardLinkInvalid."""
    try:
        data: Any = _serializer().loads(token, max_age=int(current_app.config["CARD_LINK_MAX_AGE"]))
    except SignatureExpired:
        raise CardLinkExpired("this link has expired") from None
    except BadSignature:
        raise CardLinkInvalid("this link is not one we sent") from None
    if not (isinstance(data, dict) and isinstance(data.get("membership"), int) and isinstance(data.get("email"), str)):
        raise CardLinkInvalid("this link is not one we sent")
    membership = db.session.get(Membership, data["membership"])
    if membership is None:
        raise CardLinkInvalid("this link is no longer valid")
    donor = membership.donor
    if donor.erased_at is not None or not hmac.compare_digest(_email_check(donor), data["email"]):
        raise CardLinkInvalid("this link is no longer valid")
    return membership
