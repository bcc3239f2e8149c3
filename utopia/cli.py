"""`utopia`: run dataflows on files, generate data, manage topics, read an output, and the demo.

Every user error (unknown dataflow, missing directory, bad setting, unreachable broker) ends with
one line on stderr and exit code 2, never a traceback. `utopia watch` ends with 1 when the ACLs keep
some outputs from it: its frame names them.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, KafkaException

import dataflows
from utopia.config import ConfigError, Settings


class UsageError(Exception):
    """A mistake in how the command was called; one line for the user."""


def dataflow_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(dataflows.__path__) if not m.name.startswith("_"))


def load_build(name: str) -> Callable:
    if name not in dataflow_names():
        raise UsageError(f"unknown dataflow {name!r}; known: {', '.join(dataflow_names())}")
    return importlib.import_module(f"dataflows.{name}").build


def run_on_files(name: str, input_dir: Path, output_dir: Path, workers: int = 1) -> None:
    """Run one dataflow in file mode (docs/outputs.md#file-mode) to completion."""
    from utopia.io.file_io import FileIO
    from utopia.io.runtime import relax_garbage_collector
    from utopia.io.testing import run

    if not input_dir.is_dir():
        raise UsageError(f"input directory {input_dir} does not exist")
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    build = load_build(name)
    output_dir.mkdir(parents=True, exist_ok=True)
    relax_garbage_collector()
    run(build(FileIO(input_dir, output_dir, Settings.from_env())), workers)


def cmd_run(args: argparse.Namespace) -> None:
    from utopia.io.faults import configure_logging
    from utopia.io.runtime import favour_throughput

    configure_logging(args.dataflow)
    favour_throughput()  # this process only runs the dataflow
    started = time.monotonic()
    run_on_files(args.dataflow, args.input, args.output, args.workers)
    print(f"{args.dataflow}: done in {time.monotonic() - started:.1f}s, outputs in {args.output}")


def cmd_generate(args: argparse.Namespace) -> None:
    from utopia.tools import loading
    from utopia.tools.generator import START_MS

    if args.live:
        if args.to != "kafka":
            raise UsageError("--live produces to Kafka: use --to kafka")
        if args.start is not None:
            raise UsageError("--start is for a data set: a live feed's records are stamped when they are produced")
        loading.produce_live(Settings.from_env(), args.seed, args.rate)
        return
    sizes = loading.sizes_from(args)
    start_ms = START_MS if args.start is None else args.start
    if args.to == "kafka":
        loading.produce(Settings.from_env(), sizes, args.seed, start_ms=start_ms)
    else:
        loading.write_dir(Path(args.to), sizes, args.seed, Settings.from_env().topics, start_ms)


def cmd_topics_create(args: argparse.Namespace) -> None:
    from utopia.io import topics

    topics.create(Settings.from_env(), args.partitions, args.replication)


def cmd_topics_delete(args: argparse.Namespace) -> None:
    """The project's own topics (utopia.io.topics.own_topics), after a y/N unless --yes; the outputs first."""
    from utopia.io import topics

    settings = Settings.from_env()
    outputs, inputs = topics.own_topics(settings)
    if args.outputs_only:
        inputs = []
    if not outputs + inputs:
        print(f"topics: none of this project's topics exist on {settings.bootstrap_servers}")
        return
    print(f"on {settings.bootstrap_servers}:", *outputs, *inputs, sep="\n  ")
    if not (args.yes or _confirmed(f"delete these {len(outputs + inputs)} topics and all their records? [y/N] ")):
        print("topics: nothing deleted", file=sys.stderr)
        sys.exit(1)
    topics.delete(settings, outputs)
    try:
        topics.delete(settings, inputs)
    except ConfigError as error:  # e.g. the workshop's cluster, where data-demo feeds the inputs and owns them
        raise ConfigError(f"{error} (the outputs are deleted; --outputs-only keeps the inputs)") from None
    print(f"topics: {len(outputs + inputs)} deleted")


def _confirmed(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:  # no one to ask (stdin closed or not a terminal's): no
        print(file=sys.stderr)
        return False


def cmd_tail(args: argparse.Namespace) -> None:
    from utopia.models import OUTPUT_RECORDS
    from utopia.tools import tail

    if args.output not in OUTPUT_RECORDS:
        raise UsageError(f"unknown output {args.output!r}; known: {', '.join(OUTPUT_RECORDS)}")
    if args.last < 0:
        raise UsageError("--last must be 0 or more")
    settings = Settings.from_env()
    start = OFFSET_BEGINNING if args.from_beginning else tail.from_end(args.last)
    tail.run(settings, settings.topics.output(args.output), start, args.follow, args.key, sys.stdout.buffer)


def cmd_demo(args: argparse.Namespace) -> None:
    from utopia.tools import demo

    demo.run(args.data, args.output, args.seed)


def cmd_watch(args: argparse.Namespace) -> None:
    from rich.console import Console

    from utopia.tools.watch import FileOutputs, KafkaOutputs, watch

    if args.seconds is not None and args.seconds <= 0:
        raise UsageError("--seconds must be more than 0")
    settings = Settings.from_env()
    source = FileOutputs(args.output, settings.topics) if args.output else KafkaOutputs(settings, args.from_beginning)
    if not watch(source, Console(), args.seconds, args.once):
        sys.exit(1)  # the frame names the outputs it may not read


def cmd_live_demo(args: argparse.Namespace) -> None:
    from utopia.tools import live_demo

    live_demo.run(args.rate, feed=not args.no_feed)


def parser() -> argparse.ArgumentParser:
    from utopia.tools.loading import add_size_options, start_time
    from utopia.tools.tail import LAST

    main = argparse.ArgumentParser(prog="utopia", description=__doc__.splitlines()[0])
    sub = main.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a dataflow on topic files (no broker needed)")
    run.add_argument("dataflow", help=f"one of: {', '.join(dataflow_names())}")
    run.add_argument("--input", type=Path, required=True, help="directory of <topic>.jsonl input files")
    run.add_argument("--output", type=Path, required=True, help="directory for <output topic>.jsonl files")
    run.add_argument("--workers", type=int, default=1, help="worker threads (default 1)")
    run.set_defaults(handler=cmd_run)

    gen = sub.add_parser("generate", help="generate a consistent data set to a directory or to Kafka")
    gen.add_argument("--to", default="kafka", help="a directory, or `kafka` (default) for the configured broker")
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument(
        "--start",
        type=start_time,
        help="when the data set begins, to files and Kafka alike: an ISO date "
        "or time (UTC unless it has an offset) or `yesterday` (default 2026-11-01)",
    )
    gen.add_argument("--live", action="store_true", help="keep producing to Kafka until stopped")
    gen.add_argument("--rate", type=float, default=100.0, help="records per second with --live (default 100)")
    add_size_options(gen)
    gen.set_defaults(handler=cmd_generate)

    topics = sub.add_parser("topics", help="manage topics on the configured broker")
    topics_sub = topics.add_subparsers(dest="action", required=True)
    create = topics_sub.add_parser("create", help="create the input, output and dead-letter topics")
    create.add_argument("--partitions", type=int, default=3)
    create.add_argument("--replication", type=int, default=1)
    create.set_defaults(handler=cmd_topics_create)
    delete = topics_sub.add_parser(
        "delete",
        help="delete this project's input, output and dead-letter topics "
        "(named with the configured prefixes and suffix), after asking",
    )
    delete.add_argument("--yes", action="store_true", help="do not ask")
    delete.add_argument(
        "--outputs-only", action="store_true", help="keep the input topics (on a cluster where data-demo feeds them)"
    )
    delete.set_defaults(handler=cmd_topics_delete)

    demo = sub.add_parser("demo", help="generate data, run every dataflow on files, print a summary")
    demo.add_argument("--data", type=Path, default=Path("demo-data"))
    demo.add_argument("--output", type=Path, default=Path("demo-out"))
    demo.add_argument("--seed", type=int, default=42)
    demo.set_defaults(handler=cmd_demo)

    watch = sub.add_parser("watch", help="a live dashboard of the outputs, from Kafka or an output directory")
    watch.add_argument("--output", type=Path, help="a file-mode output directory (or demo-out) to tail, not Kafka")
    watch.add_argument(
        "--from-beginning",
        action="store_true",
        help="read every output topic from its start (default: only those shown whole)",
    )
    watch.add_argument(
        "--once",
        action="store_true",
        help="print one frame of what is there now and exit (1 if some output may not be read)",
    )
    watch.add_argument("--seconds", type=float, help="stop after this many seconds (default: Ctrl-C)")
    watch.set_defaults(handler=cmd_watch)

    tail = sub.add_parser("tail", help="print an output topic's records as JSON lines, as kcat does")
    tail.add_argument("output", help="an output name without prefix and suffix, e.g. event-alerts")
    tail.add_argument("--key", help="only the records of this key")
    start = tail.add_mutually_exclusive_group()
    start.add_argument("--from-beginning", action="store_true", help="every record still kept")
    start.add_argument(
        "--last", type=int, default=LAST, metavar="N", help=f"the last N records of each partition (default {LAST})"
    )
    tail.add_argument(
        "--follow", action="store_true", help="keep printing new records until Ctrl-C (default: stop at the end)"
    )
    tail.set_defaults(handler=cmd_tail)

    live = sub.add_parser("live-demo", help="a live feed and every dataflow in the background, the dashboard in front")
    live.add_argument("--rate", type=float, default=100.0, help="records per second of the live feed (default 100)")
    live.add_argument(
        "--no-feed",
        action="store_true",
        help="no live feed: the inputs are fed already (the workshop's cluster, fed by data-demo)",
    )
    live.set_defaults(handler=cmd_live_demo)
    return main


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        args.handler(args)
    except (UsageError, ConfigError) as error:
        sys.exit(_fail(error))
    except KafkaException as error:  # e.g. an ACL that denies a write: one line, not a traceback
        reason = error.args[0].str() if error.args and hasattr(error.args[0], "str") else str(error)
        sys.exit(_fail(f"Kafka refused: {reason}"))
    except KeyboardInterrupt:
        sys.exit(130)


def _fail(error: Exception | str) -> int:
    print(f"utopia: {error}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    main()
