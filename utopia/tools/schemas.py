"""JSON Schemas of every input and output record, generated from the models (`make schemas`).

`schemas/inputs/<topic>.json` and `schemas/outputs/<output>.json`; a test fails when they differ
from what the models say, so the files are never out of date on main.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgspec

from utopia.models import INPUT_RECORDS, OUTPUT_RECORDS

ROOT = Path(__file__).resolve().parents[2] / "schemas"


def rendered() -> dict[Path, str]:
    """Relative path -> file text, for every record."""
    files = {}
    for folder, records in (("inputs", INPUT_RECORDS), ("outputs", OUTPUT_RECORDS)):
        for name, model in records.items():
            schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": name}
            schema |= msgspec.json.schema(model)
            files[Path(folder) / f"{name}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def main() -> None:
    for relative, text in rendered().items():
        path = ROOT / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(rendered())} schemas to {ROOT}", file=sys.stderr)


if __name__ == "__main__":
    main()
