"""The JSON Schemas in schemas/ are what the models say (regenerate with `make schemas`)."""

import json

from utopia.tools.schemas import ROOT, rendered


def test_schema_files_are_up_to_date():
    for relative, text in rendered().items():
        path = ROOT / relative
        assert path.exists() and path.read_text() == text, f"{relative} is out of date: run `make schemas`"
    on_disk = {p.relative_to(ROOT) for p in ROOT.rglob("*.json")}
    assert on_disk == set(rendered()), "schemas/ holds files no model generates"


def test_schemas_say_what_is_required():
    events = json.loads(rendered()[ROOT.joinpath("inputs/events.json").relative_to(ROOT)])
    assert events["$defs"]["Event"]["required"] == ["id"]
    assert events["$defs"]["Event"]["properties"]["capacity"]["anyOf"][0] == {"type": "integer"}
