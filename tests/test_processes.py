"""The SGD step timed in fresh processes: each process reports its own speed, settings run in turns, and the
chapter's table and reading say which setting keeps every process at one speed."""

import pytest

from bayesprune.performance.processes import settings, time_fresh_processes
from bayesprune.report.compute import process_speed_reading, process_speed_table


def test_each_setting_runs_in_its_own_fresh_process_round_by_round(real_data_root):
    named = {"1 thread": {"OMP_NUM_THREADS": "1"}, "2 threads": {"OMP_NUM_THREADS": "2"}}
    report = time_fresh_processes(named, rounds=2, steps=2, repeats=1, data_root=real_data_root)
    assert [(r["round"], r["setting"]) for r in report["runs"]] == [(1, "1 thread"), (1, "2 threads"),
                                                                    (2, "1 thread"), (2, "2 threads")]
    assert [r["threads"] for r in report["runs"]] == [1, 2, 1, 2]  # the environment reached each process
    assert all(r["step_ms"] > 0 and len(r["repeat_ms"]) == 1 for r in report["runs"])
    with pytest.raises(ValueError, match="must be >= 1"):
        time_fresh_processes(named, rounds=0, steps=2, repeats=1)


def test_the_table_and_reading_name_the_setting_that_keeps_one_speed():
    runs = [{"setting": s, "round": r, "step_ms": ms} for s, times in
            (("1 thread", (3.5, 3.6, 3.5)), ("2 threads", (2.0, 2.5, 2.2))) for r, ms in enumerate(times, 1)]
    table = process_speed_table({"runs": runs})
    assert table.loc["2 threads", "apart (%)"] == pytest.approx(25.0)
    assert table.loc["1 thread", "median (ms)"] == 3.5 and table.loc["1 thread", "processes"] == 3
    reading = process_speed_reading(table)
    assert "1 thread left its 3 processes 3 % apart; the other settings, 25 to 25 %." in reading
    assert "No thread setting kept every process within 2%" in process_speed_reading(table, tolerance=0.02)
    assert list(settings(2)) == ["1 thread", "2 threads", "2 threads with huge pages", "2 threads bound to cores"]


def test_a_bench_waits_for_the_load_its_predecessor_left_to_fall(monkeypatch):
    import bayesprune.performance.bench as bench

    loads = iter([1.6, 1.2, 0.9, 0.4, 0.2])
    monkeypatch.setattr(bench.os, "getloadavg", lambda: (next(loads), 0.0, 0.0))
    slept = []
    monkeypatch.setattr(bench.time, "sleep", slept.append)
    assert bench.wait_until_idle(cores=2, poll_s=5.0) == 0.9  # 0.5 a core is idle enough
    assert slept == [5.0, 5.0]
    monkeypatch.setattr(bench.os, "getloadavg", lambda: (3.0, 0.0, 0.0))
    slept.clear()
    assert bench.wait_until_idle(cores=2, limit_s=20.0, poll_s=5.0) == 3.0 and len(slept) == 4  # gives up


def test_the_figure_draws_a_line_per_setting_round_by_round():
    from bayesprune.report.plots import process_speed_figure, style_problems

    runs = [{"setting": s, "round": r, "step_ms": 2.0 + r} for s in ("1 thread", "2 threads") for r in (1, 2, 3)]
    figure = process_speed_figure({"runs": runs})
    assert [list(line.get_xdata()) for line in figure.axes[0].lines] == [[1, 2, 3], [1, 2, 3]]
    assert style_problems(figure) == []
