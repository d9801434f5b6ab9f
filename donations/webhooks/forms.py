"""The endpoint form: address, description, the events it is sent, on or off."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectMultipleField, StringField
from wtforms.validators import InputRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from donations.forms import choices, no_control_characters
from donations.webhooks.models import EVENT_WORDS, EventType


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class EndpointForm(FlaskForm):
    url = StringField(
        "Address (https://...)",
        validators=[InputRequired("Enter the address to send to."), Length(max=2000), no_control_characters],
    )
    description = StringField("What it is for (optional)", validators=[Length(max=200), no_control_characters])
    event_types = CheckboxesField(
        "Events to send",
        choices=choices([(str(t), EVENT_WORDS[t]) for t in EventType]),
        validators=[InputRequired("Choose at least one kind of event to send.")],
    )
    enabled = BooleanField("On: send events to this address", default=True)
