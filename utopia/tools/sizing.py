"""`make bench`, last part: how many cores and how much memory Utopia needs, worked out from what the bench measured.

Reads docs/benchmarks.md: each dataflow's CPU seconds per million input records on 1 worker and the
ratio of 2 connected processes to it (the cost table), and its peak memory on 1 worker at two data set
sizes (the recovery bench's sections, e.g. 100,000 and 400,000 customers). From them, and nothing
else, it writes docs/sizing.md's tables: cores at 10k, 100k and 1M input records/s, and memory at
1M, 10M and 100M customers. The measured figures are repeated beside what is extrapolated from them.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from utopia.tools.bench import REPORT, ROOT, write_section

PAGE = ROOT / "docs" / "sizing.md"
BEGIN, END = "<!-- sizing: begin -->", "<!-- sizing: end -->"
RATES = (10_000, 100_000, 1_000_000)
"""Input records per second a deployment is sized for."""
CUSTOMERS = (1_000_000, 10_000_000, 100_000_000)
BUSY = 0.7
"""The share of a core a worker is planned to use: room for bursts, catching up after an outage, and the GC."""
RECOVERY_SECTION = re.compile(r"## Recovery at ([\d,]+) customers\n(.*?)(?=\n## |\n<!-- |\Z)", re.DOTALL)


@dataclass(frozen=True)
class Measured:
    """One dataflow's figures from the bench page."""

    dataflow: str
    cpu_per_million: float
    """CPU seconds per million input records, 1 worker, the local broker's included."""
    two_processes: float
    """2 connected processes' CPU per record over 1 worker's: what the exchange between processes adds."""
    rss_mb: dict[int, float]
    """Peak memory of 1 worker by the data set's customers."""

    @property
    def mb_per_100k(self) -> float:
        """Memory that grows with the customers: the slope between the smallest and the largest data set."""
        small, large = min(self.rss_mb), max(self.rss_mb)
        return (self.rss_mb[large] - self.rss_mb[small]) / ((large - small) / 100_000)

    @property
    def base_mb(self) -> float:
        """Memory a process holds whatever the customers: the line through both points, at none."""
        small = min(self.rss_mb)
        return self.rss_mb[small] - self.mb_per_100k * small / 100_000

    def cores(self, rate: int, processes: int) -> float:
        """Cores busy at `rate` input records/s; over several processes each record may cross once more."""
        exchange = max(self.two_processes, 1.0) if processes > 1 else 1.0
        return rate * self.cpu_per_million * exchange / 1_000_000

    def processes(self, rate: int) -> int:
        """1-worker processes, each planned at BUSY of a core, for `rate` input records/s."""
        alone = _whole(self.cores(rate, 1) / BUSY)
        return alone if alone <= 1 else _whole(self.cores(rate, 2) / BUSY)

    def state_gb(self, customers: int) -> float:
        """Memory that grows with the customers, at `customers`: split between the processes with their keys."""
        return self.mb_per_100k * customers / 100_000 / 1024


def _whole(count: float) -> int:
    """The whole number at or above `count`, not one more for a float's last digit (4.2 / 0.7 is 6.000000000000001)."""
    return math.ceil(round(count, 9))


def table(text: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the Markdown table in `text` whose header starts with `first_header`, as dicts by column."""
    lines = text.splitlines()
    for n, line in enumerate(lines):
        if line.startswith(f"| {first_header} |"):
            header = [cell.strip() for cell in line.strip("|").split("|")]
            rows = []
            for row in lines[n + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(header, (cell.strip() for cell in row.strip("|").split("|")), strict=True)))
            return rows
    raise ValueError(f"no table starting with '| {first_header} |'")


def measured(page: str) -> list[Measured]:
    """Every dataflow with a cost row and a peak memory at two data set sizes or more."""
    rss: dict[str, dict[int, float]] = {}
    for customers, section in RECOVERY_SECTION.findall(page):
        for row in table(section, "dataflow"):
            if row.get("peak RSS MB, no recovery"):  # a section written before the bench measured memory has none
                peak = _number(row["peak RSS MB, no recovery"])
                rss.setdefault(row["dataflow"], {})[int(customers.replace(",", ""))] = peak
    found = []
    for row in table(page, "dataflow"):
        if "1 worker" in row and len(rss.get(row["dataflow"], {})) >= 2:
            ratio = row.get("2 processes vs 1 worker", "").rstrip("x")
            found.append(
                Measured(
                    row["dataflow"], _number(row["1 worker"]), _number(ratio) if ratio else 1.0, rss[row["dataflow"]]
                )
            )
    return found


def _number(cell: str) -> float:
    return float(cell.replace(",", ""))


def report(flows: list[Measured]) -> str:
    sizes = sorted({customers for flow in flows for customers in flow.rss_mb})
    lines = [
        BEGIN,
        "",
        "Generated by `python -m utopia.tools.sizing` (the last step of `make bench`) from "
        "[docs/benchmarks.md](benchmarks.md).",
        "",
        "**Measured** (1 worker through the local broker on the bench's data set; CPU includes the broker's):",
        "",
        "| dataflow | CPU s per million input records | 2 processes vs 1 worker | "
        + " | ".join(f"peak MB at {c:,} customers" for c in sizes)
        + " | MB per 100,000 customers | MB at none |",
        "|---|---|---|" + "---|" * len(sizes) + "---|---|",
    ]
    for f in flows:
        memory = " | ".join(f"{f.rss_mb[c]:,.0f}" if c in f.rss_mb else "" for c in sizes)
        lines.append(
            f"| {f.dataflow} | {f.cpu_per_million:.2f} | {f.two_processes:.2f}x | {memory} | "
            f"{f.mb_per_100k:,.1f} | {f.base_mb:,.0f} |"
        )
    lines += [
        "",
        f"**Extrapolated: cores and 1-worker processes** for a steady input of the bench's mix of records, each "
        f"process planned at {BUSY:.0%} of a core, and 2 processes' exchange cost applied to any number of them:",
        "",
        "| dataflow | " + " | ".join(f"{rate:,} records/s" for rate in RATES) + " |",
        "|---|" + "---|" * len(RATES),
    ]
    for f in flows:
        cells = (f"{f.cores(r, f.processes(r)):,.2f} cores, {f.processes(r):,} process(es)" for r in RATES)
        lines.append(f"| {f.dataflow} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "**Extrapolated: memory that grows with the customers** (GB, all processes together, on the line through "
        "the measured peaks; each process holds its share of the keys plus its MB at none):",
        "",
        "| dataflow | " + " | ".join(f"{c:,} customers" for c in CUSTOMERS) + " |",
        "|---|" + "---|" * len(CUSTOMERS),
    ]
    for f in flows:
        lines.append(f"| {f.dataflow} | " + " | ".join(f"{f.state_gb(c):,.1f}" for c in CUSTOMERS) + " |")
    lines += ["", END]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m utopia.tools.sizing", description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", type=Path, default=REPORT, help="the bench page read (docs/benchmarks.md)")
    parser.add_argument("--page", type=Path, default=PAGE, help="the page written (docs/sizing.md)")
    args = parser.parse_args()
    flows = measured(args.benchmarks.read_text())
    if not flows:
        sys.exit(f"sizing: {args.benchmarks} has no dataflow measured at two data set sizes: run `make bench` first")
    write_section(args.page, report(flows), BEGIN, END)
    print(f"wrote its section of {args.page}", file=sys.stderr)


if __name__ == "__main__":
    main()
