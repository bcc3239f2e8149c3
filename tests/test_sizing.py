"""docs/sizing.md's tables come from docs/benchmarks.md's figures by plain arithmetic: checked on a hand-made page."""

import pytest

from utopia.tools import sizing

RECOVERY_HEADER = (
    "| dataflow | input records | CPU s per million, no recovery | with recovery every 10 s | ratio | recovery's CPU s "
    "| store MB | seconds, no recovery | seconds, with recovery | peak RSS MB, no recovery | with recovery |"
)
PAGE = f"""# Benchmarks

## Cost per record

| dataflow | 1 worker | 2 processes | 2 processes vs 1 worker | 2 separate 1-worker runs at once | vs 1 worker |
|---|---|---|---|---|---|
| sold_out | 3.50 | 4.20 | 1.20x | 3.60 | 1.03x |
| customer_stream_count | 2.00 | 1.80 | 0.90x | 2.10 | 1.05x |

<!-- recovery bench, 100000 customers: begin -->

## Recovery at 100,000 customers

{RECOVERY_HEADER}
|---|---|---|---|---|---|---|---|---|---|---|
| sold_out | 1,317,293 | 4.88 | 6.98 | 1.43x | 2.77 | 20.3 | 5.97 | 9.00 | 400 | 450 |
| customer_stream_count | 1,000,000 | 3.02 | 3.68 | 1.22x | 0.66 | 3.7 | 2.99 | 3.62 | 200 | 210 |

<!-- recovery bench, 100000 customers: end -->

<!-- recovery bench, 400000 customers: begin -->

## Recovery at 400,000 customers

{RECOVERY_HEADER}
|---|---|---|---|---|---|---|---|---|---|---|
| sold_out | 1,662,653 | 5.63 | 8.53 | 1.51x | 4.81 | 95.8 | 8.34 | 13.75 | 1,000 | 1,100 |

<!-- recovery bench, 400000 customers: end -->
"""


def test_a_dataflow_measured_at_two_sizes_gets_its_cost_ratio_and_the_line_through_its_peaks():
    [sold_out] = sizing.measured(PAGE)  # customer_stream_count has a peak at one size only
    assert (sold_out.dataflow, sold_out.cpu_per_million, sold_out.two_processes) == ("sold_out", 3.5, 1.2)
    assert sold_out.rss_mb == {100_000: 400.0, 400_000: 1_000.0}
    assert (sold_out.mb_per_100k, sold_out.base_mb) == (200.0, 200.0)  # 600 MB more for 300,000 more customers


def test_cores_and_processes_follow_the_rate_and_pay_the_exchange_once_there_are_two():
    [sold_out] = sizing.measured(PAGE)
    assert sold_out.cores(10_000, 1) == pytest.approx(0.035)  # 10k records/s x 3.5 s per million
    assert sold_out.processes(10_000) == 1
    assert sold_out.cores(1_000_000, 2) == pytest.approx(4.2)  # 3.5 cores, 1.2x for the exchange
    assert sold_out.processes(1_000_000) == 6  # 4.2 cores at 70% each
    assert sold_out.state_gb(100_000_000) == pytest.approx(200 * 1_000 / 1024)


def test_the_page_repeats_the_measured_figures_beside_the_extrapolated_ones():
    page = sizing.report(sizing.measured(PAGE))
    lines = page.splitlines()
    assert "| sold_out | 3.50 | 1.20x | 400 | 1,000 | 200.0 | 200 |" in lines
    assert ("| sold_out | 0.04 cores, 1 process(es) | 0.35 cores, 1 process(es) | 4.20 cores, 6 process(es) |") in lines
    assert "| sold_out | 2.0 | 19.5 | 195.3 |" in lines
    assert lines[0] == sizing.BEGIN and lines[-1] == sizing.END


def test_a_recovery_section_written_before_memory_was_measured_counts_for_no_size():
    # The recovery tables without their last two columns (the peaks), as the bench wrote them before.
    old = "\n".join(line.rsplit("|", 3)[0] + "|" if line.count("|") == 12 else line for line in PAGE.splitlines())
    assert "peak RSS" not in old and "| 9.00 |\n" in old
    assert sizing.measured(old) == []


def test_a_page_without_two_sizes_says_what_to_run(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "benchmarks.md"
    empty.write_text(PAGE.split("<!-- recovery bench, 400000")[0])
    monkeypatch.setattr("sys.argv", ["sizing", "--benchmarks", str(empty), "--page", str(tmp_path / "sizing.md")])
    with pytest.raises(SystemExit) as stopped:
        sizing.main()
    assert (
        str(stopped.value) == f"sizing: {empty} has no dataflow measured at two data set sizes: run `make bench` first"
    )
