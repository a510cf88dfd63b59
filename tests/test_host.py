"""What the package reads of the machine it runs on."""

from __future__ import annotations

import os

from bayesprune import host


def test_a_bench_report_is_named_by_its_processor_and_cores(monkeypatch):
    monkeypatch.setattr(host, "cpu_name", lambda: "Intel(R) Xeon(R) Platinum 8480+")
    assert host.machine_slug() == f"cpu-intel-xeon-{len(os.sched_getaffinity(0))}cores"
    monkeypatch.setattr(host, "cpu_name", lambda: "")
    assert host.machine_slug().startswith("cpu-unknown-")
