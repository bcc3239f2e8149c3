"""The real-world facts the Java data-demo draws from (venues, cities, zip codes), shipped as package data."""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class VenueInfo:
    name: str
    street: str
    city: str
    state: str
    zip5: str
    lat: float
    lon: float
    capacity: int


@dataclass(frozen=True)
class City:
    name: str
    state: str
    population: int
    lat: float
    lon: float


def _rows(name: str) -> list[dict[str, str]]:
    raw = resources.files("utopia").joinpath("data", name).read_bytes()
    if name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))


@cache
def venues() -> list[VenueInfo]:
    """The venue list, cleaned: stray spaces, and one row whose city slipped into the street column."""
    out = []
    for row in _rows("venues.csv"):
        row = {k: v.strip() for k, v in row.items()}
        street, city = row["street"], row["city"]
        if not city:  # "9 E Allen Street Philadelphia,,PA": the city is the street's last word
            street, _, city = street.rpartition(" ")
        out.append(
            VenueInfo(
                row["name"],
                street,
                city,
                row["state"],
                row["zip"].zfill(5),
                float(row["lat"]),
                float(row["lon"]),
                int(row["capacity"]),
            )
        )
    return out


@cache
def cities() -> list[City]:
    """The 200 largest US cities, largest first."""
    return [
        City(r["city"], r["state_abbr"], int(r["population"]), float(r["lat"]), float(r["lon"]))
        for r in _rows("us-cities-top-200.csv")
    ]


@cache
def zip_codes() -> dict[tuple[str, str], list[str]]:
    """(city, state abbreviation) -> the city's zip5 codes."""
    out: dict[tuple[str, str], list[str]] = {}
    for row in _rows("zipcodes.csv.gz"):
        out.setdefault((row["city"], row["state_abbr"]), []).append(row["zipcode"].zfill(5))
    return out
