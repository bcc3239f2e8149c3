"""Trending artists: the 3 most streamed of each UTC hour of `streamtime` (docs/outputs.md#most_streamed_artists).

Bytewax's own windowing does the hours: `fold_window` with a `TumblingWindower` aligned to the hour
and an event-time clock with 5 minutes of wait. A window costs a Python call per item, so the streams
of one batch are counted per hour first (`hour_counts`), on the worker that read them, and one item
per hour and batch reaches the window.

The clock is Bytewax's `EventClock` kept per lane (per worker reading the input), the watermark
being the lowest of theirs: workers do not wait for each other, and with one clock for all, a
worker a few minutes of stream time ahead would make every stream of the others late. While no
stream comes it moves on with the wall clock (`now`), so a tailing run closes an hour by itself.
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from operator import attrgetter
from typing import TypeGuard, cast

import msgspec
from bytewax.operators.windowing import UTC_MAX, UTC_MIN, Clock, ClockLogic, TumblingWindower

from utopia.codec import Batch, as_in_record
from utopia.dates import format_instant, instants_ms
from utopia.io import metrics, stopping
from utopia.models import Artist, NamedArtistStreams, Stream, TrendingArtists
from utopia.rules.popularity import GLOBAL, TOP_ARTISTS
from utopia.steps import Out, Placed

log = logging.getLogger("utopia")

HOUR_MS = 3_600_000
WAIT_MS = 300_000
"""How far behind the newest stream time the watermark is: a stream may come this late and still count."""


class HourCounts(msgspec.Struct, gc=False):
    """Streams of one UTC hour, in one batch or (folded) in the whole window: count and when reached, per artist."""

    start_ms: int
    newest_ms: int
    lane: int
    counts: dict[str, int]
    reached: dict[str, int]
    """Input position of each artist's latest stream here: where it reached its count (ties go to the earlier)."""


class Closings(msgspec.Struct, gc=False):
    """Where in a batch of `lane` each hour was closed: the first stream at least the wait past the hour's end."""

    lane: int
    at: dict[int, int]
    """Hour end (epoch ms) -> input position of that stream."""


class CaughtUp(msgspec.Struct, gc=False):
    """`lane` has read all its input for now (utopia.io.kafka_source): no stream of it is on the way."""

    lane: int


def now() -> datetime:
    """The wall clock, which moves the watermark on while no stream comes (tests put their own clock here)."""
    return datetime.now(UTC)


class LaneClock(Clock[HourCounts, dict]):
    """An `EventClock` per lane of input, the watermark the lowest of theirs (and it never goes back)."""

    def build(self, resume_state: dict | None) -> _LaneClockLogic:
        return _LaneClockLogic({} if resume_state is None else resume_state)


class _LaneClockLogic(ClockLogic[HourCounts, dict]):
    def __init__(self, lanes: dict[int, tuple[datetime, datetime]]):
        self.lanes = lanes  # lane -> (its newest stream time, the system time it was seen)
        self.now = now()
        self.watermark = UTC_MIN

    def before_batch(self) -> None:
        self.now = max(self.now, now())

    def on_item(self, value: HourCounts) -> tuple[datetime, datetime]:
        at = datetime.fromtimestamp(value.newest_ms / 1000, UTC)
        newest = self.lanes.get(value.lane)
        if newest is None or at > newest[0]:
            self.lanes[value.lane] = (at, self.now)
        return at, self._watermark()

    def _watermark(self) -> datetime:
        self.watermark = max(self.watermark, self._lowest())
        return self.watermark

    def _lowest(self) -> datetime:
        # As EventClock: a lane's newest time less the wait, moving on with the system clock since.
        return min(newest - WAIT + (self.now - seen) for newest, seen in self.lanes.values())

    def on_notify(self) -> datetime:
        self.before_batch()
        return self._watermark() if self.lanes else self.watermark

    def on_eof(self) -> datetime:
        return UTC_MAX

    def to_system_utc(self, timestamp: datetime) -> datetime | None:
        """When, by the system clock, the watermark gets to `timestamp` if no newer stream comes first.

        The window step wakes up then to close a window that no stream closes. Bytewax's `EventClock`
        takes stream time for system time; on streams older than the system clock that is always
        already past, so the step was woken again at every step of its worker, busy while the worker
        waited for input: about 62,000 times in each process of a profiled 2-process most_streamed_artists
        run on the bench data, against once per batch (1,008) with one worker.
        """
        if not self.lanes:
            return None
        if timestamp <= self.watermark:
            return self.now
        return self.now + (timestamp - self._lowest())

    def snapshot(self) -> dict:
        return self.lanes


WAIT = timedelta(milliseconds=WAIT_MS)
CLOCK = LaneClock()
HOURS = TumblingWindower(length=timedelta(milliseconds=HOUR_MS), align_to=datetime(2000, 1, 1, tzinfo=UTC))


Hourly = tuple[str, HourCounts | Closings | CaughtUp]
"""What `hour_counts` makes of a batch: an hour's counts, where hours closed in it, or that its lane is caught up."""


def hour_counts(batch: Batch) -> list[Hourly]:
    """The streams of a batch counted per hour of their time (the record's timestamp if it has none).

    A stream more than the wait older than one before it in the batch is late already: the window
    would see it after its newer neighbour. It is logged, not counted. Also says where in the batch
    each hour closed (`Closings`), for the names on its record, or that the lane is caught up.
    """
    if batch.caught_up:
        return [(GLOBAL, CaughtUp(batch.lane))]
    hours: dict[int, HourCounts] = {}
    closings: dict[int, int] = {}
    for _, streams, indices in batch.runs((Stream,)):
        stamped = instants_ms(list(map(_streamtime, streams)))
        if None in stamped:
            times = [
                at if at is not None else as_in_record(raw).timestamp for at, raw in zip(stamped, batch.raw(indices))
            ]
        else:
            times = cast(list[int], stamped)  # no None in it, just checked
        positions = [batch.position + index for index in indices]
        artists = list(map(_artistid, streams))
        in_order = times == sorted(times)
        _closings(times, positions, closings)
        if not in_order:
            times, artists, positions = _on_time(times, artists, positions)
        starts = [at - at % HOUR_MS for at in times]
        # An artist's last stream is where it reached its count; in time order, an hour's last is its newest.
        newest = dict(zip(starts, times)) if in_order else _newest_per_hour(starts, times)
        counts = Counter(zip(starts, artists))
        reached = dict(zip(zip(starts, artists), positions))
        for (start, artist), n in counts.items():
            hour = hours.get(start)
            if hour is None:
                hour = hours[start] = HourCounts(start, newest[start], batch.lane, {}, {})
            else:
                hour.newest_ms = max(hour.newest_ms, newest[start])
            hour.counts[artist] = hour.counts.get(artist, 0) + n
            hour.reached[artist] = reached[start, artist]
    items: list[Hourly] = [(GLOBAL, hour) for hour in hours.values()]
    if closings:
        items.append((GLOBAL, Closings(batch.lane, closings)))
    return items


def _closings(times: list[int], positions: list[int], closings: dict[int, int]) -> None:
    """Each hour end that the newest stream time so far passes by the wait, and the stream that first did."""
    newest = list(accumulate(times, max))
    end = (times[0] - WAIT_MS) - (times[0] - WAIT_MS) % HOUR_MS
    while end + WAIT_MS <= newest[-1]:
        first = bisect.bisect_left(newest, end + WAIT_MS)
        closings.setdefault(end, positions[first])
        end += HOUR_MS


def is_hour(item: Hourly) -> TypeGuard[tuple[str, HourCounts]]:
    return isinstance(item[1], HourCounts)


def _on_time(times: list[int], artists: list[str], positions: list[int]) -> tuple[list[int], list[str], list[int]]:
    """The streams not late behind a newer one before them in the batch; the late ones are logged."""
    kept = [
        (at, artist, position)
        for at, artist, position, newest in zip(times, artists, positions, accumulate(times, max, initial=-1 << 62))
        if at >= newest - WAIT_MS
    ]
    if len(kept) < len(times):
        log.warning("trending-artists: %d late stream(s) not counted", len(times) - len(kept))
    return [k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept]


def _newest_per_hour(starts: list[int], times: list[int]) -> dict[int, int]:
    newest: dict[int, int] = {}
    for start, at in zip(starts, times):
        newest[start] = max(at, newest.get(start, at))
    return newest


_streamtime, _artistid = attrgetter("streamtime"), attrgetter("artistid")


def empty_hour() -> HourCounts:
    return HourCounts(0, 0, 0, {}, {})


def add_hour(window: HourCounts, more: HourCounts) -> HourCounts:
    """Fold one batch's counts of the hour into the window's."""
    counts, reached = window.counts, window.reached
    for artist, n in more.counts.items():
        counts[artist] = counts.get(artist, 0) + n
        if more.reached[artist] > reached.get(artist, -1):
            reached[artist] = more.reached[artist]
    window.start_ms = more.start_ms
    window.newest_ms = max(window.newest_ms, more.newest_ms)
    return window


def closed_window(keyed: tuple[str, tuple[int, HourCounts]]) -> list[tuple[str, HourCounts]]:
    """A closed window, for the step that knows the artists' names.

    None that a stop closed (Ctrl-C, utopia.io.stopping): Bytewax closes every open window when its
    input ends, but an hour cut short by a stop is not over.
    """
    if stopping.requested.is_set():
        return []
    return [(GLOBAL, keyed[1][1])]


def closings(keyed: Hourly) -> list[Hourly]:
    """The items that are not an hour's counts (`is_hour`), as they are: closings, and lanes caught up."""
    return [keyed]


def late_streams(keyed: tuple[str, tuple[int, HourCounts]]) -> None:
    late = keyed[1][1]
    metrics.LATE.labels("most_streamed_artists").inc(sum(late.counts.values()))
    log.warning(
        "trending-artists: %d late stream(s) of the hour from %s not counted",
        sum(late.counts.values()),
        format_instant(datetime.fromtimestamp(late.start_ms / 1000, UTC)),
    )


class ArtistNames:
    """Every artist's names with their places in the input, put on each closed hour's top 3 (null while unknown).

    An hour's record names its artists as they were when it closed: at the stream that passed its
    end by the wait (`Closings`), or at the end of the input. The closed window and that stream
    come by different paths, so a window waits here until it is known where it closed; as of a
    place in the input, the names are the same however records are batched. A window the wall
    clock closed, while tailing, has no such stream: once every lane is caught up (`CaughtUp`, and
    no stream since), none is on the way, and it takes the latest names.
    """

    __slots__ = ("names", "closed_at", "waiting", "caught_up")

    placed = (Artist,)

    def __init__(self, _key: str):
        self.names: dict[str, tuple[list[int], list[str | None]]] = {}
        self.closed_at: dict[int, int] = {}  # hour end -> position of the stream that closed it
        self.waiting: list[HourCounts] = []
        self.caught_up: dict[int, bool] = {}  # lane -> whether it said so after its last streams

    def __setstate__(self, state: tuple[None, dict]) -> None:
        """A snapshot of a version before `caught_up` resumes with no lane caught up yet."""
        for name, value in ({"caught_up": {}} | state[1]).items():
            setattr(self, name, value)

    def apply(self, item: Placed | Closings | CaughtUp | HourCounts) -> list[Out]:
        if isinstance(item, Placed):
            artist = item.value
            positions, names = self.names.setdefault(artist.id, ([], []))
            at = bisect.bisect(positions, item.position)
            positions.insert(at, item.position)
            names.insert(at, artist.name)
            return []
        if isinstance(item, Closings):
            self.caught_up[item.lane] = False
            for end, position in item.at.items():
                self.closed_at[end] = min(position, self.closed_at.get(end, position))
        elif isinstance(item, CaughtUp):
            self.caught_up[item.lane] = True
        else:
            self.waiting.append(item)
        caught_up = bool(self.caught_up) and all(self.caught_up.values())
        waiting, self.waiting, out = self.waiting, [], []
        for hour in waiting:
            closed = [position for end, position in self.closed_at.items() if end >= hour.start_ms + HOUR_MS]
            if closed or caught_up:
                out.append(self.record(hour, min(closed, default=None)))
            else:
                self.waiting.append(hour)
        return out

    def at_end(self) -> list[Out]:
        """The hours closed by the end of the input, named with the latest names."""
        waiting, self.waiting = self.waiting, []
        return [self.record(hour, None) for hour in waiting]

    def record(self, hour: HourCounts, position: int | None) -> Out:
        counts, reached = hour.counts, hour.reached
        top = sorted(counts, key=lambda artist: (-counts[artist], reached[artist]))[:TOP_ARTISTS]
        start = format_instant(datetime.fromtimestamp(hour.start_ms / 1000, UTC))
        end = format_instant(datetime.fromtimestamp((hour.start_ms + HOUR_MS) / 1000, UTC))
        named = [NamedArtistStreams(artist, self.name(artist, position), counts[artist]) for artist in top]
        return start, TrendingArtists(start, end, named)

    def name(self, artistid: str, position: int | None) -> str | None:
        positions, names = self.names.get(artistid, ((), ()))
        known = len(positions) if position is None else bisect.bisect(positions, position)
        return names[known - 1] if known else None
