"""`utopia demo` / `make demo`: generate a data set, run every dataflow on it in file mode, summarise the runs
and tell what they found."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import msgspec

from utopia.cli import dataflow_names, run_on_files
from utopia.config import Settings
from utopia.tools.generator import Sizes
from utopia.tools.loading import write_dir
from utopia.tools.story import read_outputs, story

_CATEGORIES = ("status", "alert", "reason")


class _Line(msgspec.Struct):
    key: str | None
    value: dict


def summarize(path: Path) -> str:
    """One readable line about an output file: records, keys, a breakdown or the latest example."""
    lines = [msgspec.json.decode(line, type=_Line) for line in path.read_bytes().splitlines()]
    name = path.stem
    if not lines:
        return f"  {name}: nothing"
    latest = {line.key: line.value for line in lines}
    text = f"  {name}: {len(lines):,} records, {len(latest):,} keys"
    category = next((c for c in _CATEGORIES if c in lines[0].value), None)
    if category:
        counts = Counter(line.value[category] for line in lines)
        return text + " (" + ", ".join(f"{n:,} {value}" for value, n in counts.most_common()) + ")"
    key, value = lines[-1].key, lines[-1].value
    example = msgspec.json.encode(value).decode()
    return text + f"; latest for {key}: {example[:160]}{'...' if len(example) > 160 else ''}"


def run(data: Path, output: Path, seed: int = 42) -> None:
    write_dir(data, Sizes(), seed)
    example = next(path for path in sorted(data.glob("*events.jsonl")))
    print(
        f"an event as the data-demo producer writes it (its eventdate in the producer's local time):\n"
        f"  {example.open().readline().strip()}"
    )
    for name in dataflow_names():
        started = time.monotonic()
        run_on_files(name, data, output / name)
        print(f"\n{name} ({time.monotonic() - started:.1f}s):")
        for path in sorted((output / name).glob("*.jsonl")):
            print(summarize(path))
    print(f"\nAll outputs are in {output}/<dataflow>/<topic>.jsonl")
    topics = Settings.from_env().topics
    print("\nWhat each scenario found:")
    print("\n".join(story((name, read_outputs(output / name, topics)) for name in dataflow_names())))
