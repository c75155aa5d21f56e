"""Builds, in Open Forms, the same one-step form as a madoguchi procedure.

Run inside Open Forms' Django project (benches/peer/openforms.sh does):

    MADOGUCHI_DEFINITION=forms/kyoiku/toshokan-yoyaku.yaml python src/manage.py shell < this file

It reads the procedure's YAML definition from madoguchi's catalog and creates a form whose slug is
the procedure's id, with one step holding one Form.io component per field: the same keys, the same
required flags, patterns, lengths, choices and conditional visibility, so both systems validate the
same answers against the same rules. A field's `required_if` becomes a logic rule that makes the
component required, which is how Open Forms expresses it. Only the flat field types this comparison
uses are mapped; anything else stops the script rather than building a different form.

Prints the form's UUID on the last line.
"""

import os
import sys

import yaml
from django.db import transaction

from openforms.forms.models import (
    Form,
    FormDefinition,
    FormLogic,
    FormStep,
    FormVariable,
)


def label(value):
    # The peer is Dutch/English; the English label keeps both forms readable side by side.
    return value.get("en") or value.get("ja") if isinstance(value, dict) else str(value)


def options(field):
    return [
        {"value": option["value"], "label": label(option["label"])}
        for option in field["options"]
    ]


def component(field):
    kind = field["type"]
    base = {
        "key": field["id"],
        "label": label(field["label"]),
        "validate": {"required": bool(field.get("required", False))},
    }
    if kind in ("text", "textarea"):
        base["type"] = "textfield" if kind == "text" else "textarea"
        if "max_length" in field:
            base["validate"]["maxLength"] = field["max_length"]
        if "pattern" in field:
            base["validate"]["pattern"] = field["pattern"]
    elif kind == "email":
        base["type"] = "email"
    elif kind == "phone":
        base["type"] = "phoneNumber"
    elif kind == "radio":
        base.update(
            type="radio", values=options(field), openForms={"dataSrc": "manual"}
        )
    elif kind == "select":
        base.update(
            type="select",
            dataSrc="values",
            data={"values": options(field)},
            openForms={"dataSrc": "manual"},
        )
    else:
        sys.exit(f"field {field['id']}: type {kind} is not mapped to Form.io here")
    show_if = field.get("show_if")
    if show_if is not None:
        # Only the `{"==": [{"var": x}, value]}` shape, which Form.io's simple conditional says.
        (operator, (variable, value)), = show_if.items()
        if operator != "==" or set(variable) != {"var"}:
            sys.exit(f"field {field['id']}: show_if {show_if} is not a simple equality")
        base["conditional"] = {"show": True, "when": variable["var"], "eq": value}
        base["clearOnHide"] = True
    return base


def required_if_rules(fields):
    for field in fields:
        trigger = field.get("required_if")
        if trigger is not None:
            yield trigger, {
                "component": field["id"],
                "action": {
                    "type": "property",
                    "property": {"value": "validate.required", "type": "bool"},
                    "state": True,
                },
            }


@transaction.atomic
def build(definition):
    if len(definition["pages"]) != 1:
        sys.exit(f"{definition['id']} has {len(definition['pages'])} pages; one is compared")
    fields = definition["pages"][0]["fields"]
    if any("include" in field for field in fields):
        sys.exit(f"{definition['id']} includes blocks; a flat procedure is compared")
    slug = definition["id"]
    # Idempotent: a second run replaces the form.
    Form.objects.filter(slug=slug).delete()
    FormDefinition.objects.filter(slug=slug).delete()
    form_definition = FormDefinition.objects.create(
        name=label(definition["title"]),
        slug=slug,
        configuration={"display": "form", "components": [component(f) for f in fields]},
    )
    form = Form.objects.create(
        name=label(definition["title"]),
        slug=slug,
        active=True,
        send_confirmation_email=False,
    )
    step = FormStep.objects.create(form=form, form_definition=form_definition)
    for trigger, action in required_if_rules(fields):
        rule = FormLogic.objects.create(form=form, json_logic_trigger=trigger, actions=[action])
        rule.form_steps.add(step)
    FormVariable.objects.create_for_form(form)
    return form


definition = yaml.safe_load(open(os.environ["MADOGUCHI_DEFINITION"], encoding="utf-8"))
form = build(definition)
print(form.uuid)
