"""Staff console views under /staff/, one module per area, on one Blueprint ("staff"). Thin:
validate a form, call one service function, redirect.

Who may do what is declared on each view with `role_required` (see accounts/roles.py).
"""

from __future__ import annotations

# Importing the areas registers their views on the Blueprint.
from donations.staff.views import account, donors, funds, gifts, look, offline_gifts, users  # noqa: F401
from donations.staff.views.console import bp

__all__ = ["bp"]
