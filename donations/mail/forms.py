"""Forms for the outbox and statement pages. CSRF is on for every one."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.validators import InputRequired


class StatementRequestForm(FlaskForm):
    """The donor picks one of the years they gave in; the view sets the choices."""

    year = SelectField("Year", coerce=int, validators=[InputRequired()])
