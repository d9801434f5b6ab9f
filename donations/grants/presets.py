"""Presets: a program's settings from a real program's published rules. Every setting stays
editable afterwards, and each preset names its source in the program's notes."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from donations.grants.models import ProgramSettings
from donations.grants.rules import RecurringRule

PRESETS = ("newsmatch", "rfa", "local")
# Report for America: the host newsroom's local share of a corps member's salary, by year of service.
RFA_LOCAL_SHARE = {1: (1, 2), 2: (1, 3), 3: (1, 5)}  # 50%, 33%, 20%

NEWSMATCH_NOTES = (
    'Preset: NewsMatch, from its help center ("Which donations are eligible", "New recurring donor '
    'boost FAQs", "Match caps"): window Nov 1 - Dec 31; up to $1,000 matched per donor; individuals only '
    "(a gift through a donor-advised fund or a family foundation from one person counts as that person's); "
    "cash and in-kind gifts do not count; anonymous gifts count up to $5,000; only the amount above the fair "
    "market value of what the donor received counts; a gift counts toward NewsMatch or a local match, never "
    "both; a new monthly recurring gift counts 12 x its amount. The program-level cap is NewsMatch's 2024 "
    "main-fund cap ($15,000): set your own award's cap."
)
RFA_NOTES = (
    "Preset: Report for America, from its FAQ for newsrooms and fundraising guidelines: the host newsroom "
    "raises a local share of a corps member's salary (50% in year 1, 33% in year 2, 20% in year 3); local "
    "money often flows through a fiscal sponsor; RFA asks for donors above $1,000 (the disclosure report); "
    "its program year runs June 1 - May 31."
)
LOCAL_NOTES = (
    "Preset: a local match: every gift from an individual in the window counts, each installment as paid; "
    "mark it exclusive with NewsMatch when a gift may count toward one of them only."
)


class PresetError(ValueError):
    pass


def rfa_goal_cents(salary_cents: int, corps_year: int) -> int:
    """The local share of `salary_cents` in the corps member's `corps_year` (1, 2 or 3), in cents."""
    if corps_year not in RFA_LOCAL_SHARE:
        raise PresetError("The corps member's year is 1, 2 or 3.")
    if salary_cents <= 0:
        raise PresetError("The salary must be more than $0.")
    numerator, denominator = RFA_LOCAL_SHARE[corps_year]
    return salary_cents * numerator // denominator


def preset(
    kind: str,
    *,
    name: str,
    slug: str,
    first_day: date,
    last_day: date | None = None,
    salary_cents: int | None = None,
    corps_year: int = 1,
) -> ProgramSettings:
    """The settings `kind` sets; the caller overrides any of them with `dataclasses.replace`."""
    if kind == "newsmatch":
        return ProgramSettings(
            name=name,
            slug=slug,
            first_day=first_day,
            last_day=last_day or date(first_day.year, 12, 31),
            cap_cents=100_000,
            # Cash does not count (2024 rules); a sponsor's gifts count where their fund does.
            sources=("stripe", "check", "other", "sponsor"),
            individuals_only=True,
            recurring_rule=RecurringRule.NEW_RECURRING_X12,
            notes=NEWSMATCH_NOTES,
            anonymous_limit_cents=500_000,
            program_cap_cents=1_500_000,
            deduct_fair_market_value=True,
            priority=10,
        )
    if kind == "rfa":
        settings = ProgramSettings(
            name=name,
            slug=slug,
            first_day=first_day,
            # June - May: the day before the first day's anniversary.
            last_day=last_day or replace_year(first_day, first_day.year + 1) - timedelta(days=1),
            cap_cents=None,
            individuals_only=False,
            recurring_rule=RecurringRule.INSTALLMENTS,
            notes=RFA_NOTES,
            priority=50,
        )
        if salary_cents is not None:
            goal = rfa_goal_cents(salary_cents, corps_year)
            notes = f"{RFA_NOTES} Goal: year {corps_year} local share of a ${salary_cents / 100:,.2f} salary."
            settings = replace(settings, goal_cents=goal, notes=notes)
        return settings
    if kind == "local":
        return ProgramSettings(
            name=name,
            slug=slug,
            first_day=first_day,
            last_day=last_day or first_day,
            cap_cents=None,
            notes=LOCAL_NOTES,
            priority=50,
        )
    raise PresetError(f"The preset is one of {', '.join(PRESETS)}.")


def replace_year(day: date, year: int) -> date:
    try:
        return day.replace(year=year)
    except ValueError:  # Feb 29
        return day.replace(year=year, day=28)
