"""funds: a tax status (the newsroom's own, or held by a fiscal sponsor: name, EIN, receipt
wording); gifts: source `sponsor`, and tax deductible exactly when the fund is sponsor-held

The CHECK that no gift is ever deductible becomes: a gift is deductible exactly when its source
is `sponsor`, and (a trigger, since a CHECK cannot read another table) exactly when its fund is
sponsor-held; a fund's tax status cannot change once it has gifts. Triggers rather than a
composite foreign key because SQLite here runs without `PRAGMA foreign_keys`. A later SQLite
batch migration of `gifts` or `funds` recreates the table and drops its triggers: it must run
`create_triggers()` again. Every program counts the new source: no gift has it yet, so no
figure changes, and a sponsor's gifts count wherever their fund is counted.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06

"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

MESSAGE = "a gift is tax deductible exactly when its fund is held by a fiscal sponsor"
FUND_MESSAGE = "the tax status of a fund with gifts cannot change"
SOURCES = "'stripe', 'check', 'cash', 'other', 'sponsor'"

SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER gifts_deductible_insert BEFORE INSERT ON gifts
    WHEN NEW.tax_deductible IS NOT (SELECT sponsor_held FROM funds WHERE id = NEW.fund_id)
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER gifts_deductible_update BEFORE UPDATE OF fund_id, tax_deductible ON gifts
    WHEN NEW.tax_deductible IS NOT (SELECT sponsor_held FROM funds WHERE id = NEW.fund_id)
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER funds_tax_status_update BEFORE UPDATE OF sponsor_held ON funds
    WHEN EXISTS (SELECT 1 FROM gifts WHERE fund_id = NEW.id AND tax_deductible IS NOT NEW.sponsor_held)
    BEGIN SELECT RAISE(ABORT, '{FUND_MESSAGE}'); END""",
)

# FOR SHARE: a gift being written locks its fund's row, so a concurrent change of the fund's
# tax status waits for it and then sees it (the fund's trigger runs once its row is locked).
POSTGRESQL_TRIGGERS = (
    f"""CREATE FUNCTION gifts_deductible_matches_fund() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.tax_deductible IS DISTINCT FROM
                (SELECT sponsor_held FROM funds WHERE id = NEW.fund_id FOR SHARE) THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER gifts_deductible BEFORE INSERT OR UPDATE OF fund_id, tax_deductible ON gifts
    FOR EACH ROW EXECUTE FUNCTION gifts_deductible_matches_fund()""",
    f"""CREATE FUNCTION funds_tax_status_kept() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM gifts WHERE fund_id = NEW.id AND tax_deductible IS DISTINCT FROM NEW.sponsor_held) THEN
            RAISE EXCEPTION '{FUND_MESSAGE}' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER funds_tax_status BEFORE UPDATE OF sponsor_held ON funds
    FOR EACH ROW EXECUTE FUNCTION funds_tax_status_kept()""",
)


def create_triggers() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)


def drop_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS gifts_deductible ON gifts")
        op.execute("DROP TRIGGER IF EXISTS funds_tax_status ON funds")
        op.execute("DROP FUNCTION IF EXISTS gifts_deductible_matches_fund()")
        op.execute("DROP FUNCTION IF EXISTS funds_tax_status_kept()")
    else:
        for name in ("gifts_deductible_insert", "gifts_deductible_update", "funds_tax_status_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade():
    with op.batch_alter_table("funds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sponsor_held", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("sponsor_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("sponsor_ein", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("sponsor_receipt_wording", sa.Text(), nullable=False, server_default=""))
        batch_op.create_check_constraint(
            batch_op.f("ck_funds_sponsor"),
            sa.text(
                "(sponsor_held = true AND sponsor_name IS NOT NULL AND sponsor_ein IS NOT NULL) OR "
                "(sponsor_held = false AND sponsor_name IS NULL AND sponsor_ein IS NULL)"
            ),
        )
    with op.batch_alter_table("gifts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_gifts_never_tax_deductible"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_gifts_source"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_gifts_source"), sa.text(f"source IN ({SOURCES})"))
        batch_op.create_check_constraint(
            batch_op.f("ck_gifts_deductible_from_sponsor"),
            sa.text(
                "(source = 'sponsor' AND tax_deductible = true) OR "
                "(source != 'sponsor' AND tax_deductible = false)"
            ),
        )
    create_triggers()
    programs = sa.table("grant_programs", sa.column("id", sa.Integer()), sa.column("sources", sa.JSON()))
    connection = op.get_bind()
    for program_id, sources in connection.execute(sa.select(programs.c.id, programs.c.sources)).all():
        if "sponsor" not in sources:
            connection.execute(
                programs.update().where(programs.c.id == program_id).values(sources=[*sources, "sponsor"])
            )


def downgrade():
    # The ledger is never edited: with a sponsor's gift recorded there is no going back.
    if op.get_bind().scalar(sa.text("SELECT count(*) FROM gifts WHERE source = 'sponsor'")):
        raise RuntimeError("gifts received by a fiscal sponsor are recorded: 0021 cannot be undone")
    drop_triggers()
    with op.batch_alter_table("gifts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_gifts_deductible_from_sponsor"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_gifts_source"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_gifts_source"), sa.text("source IN ('stripe', 'check', 'cash', 'other')")
        )
        batch_op.create_check_constraint(batch_op.f("ck_gifts_never_tax_deductible"), sa.text("tax_deductible = false"))
    with op.batch_alter_table("funds", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_funds_sponsor"), type_="check")
        batch_op.drop_column("sponsor_receipt_wording")
        batch_op.drop_column("sponsor_ein")
        batch_op.drop_column("sponsor_held")
        batch_op.drop_column("sponsor_name")
