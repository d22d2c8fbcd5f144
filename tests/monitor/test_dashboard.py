"""The Grafana dashboard in monitoring/ asks only for metrics and labels the hub exports, and the
latency histograms have the buckets this hub's range needs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ehis.adapters.events import BreakerState, SourceStatus
from ehis.monitor import HubMetrics
from ehis.monitor.aggregate import exposition, merge_metrics

DASHBOARD = Path(__file__).parents[2] / "monitoring" / "grafana-dashboard.json"
PROMQL_WORDS = {"sum", "by", "rate", "histogram_quantile", "le", "or", "vector", "time", "max", "min", "without"}


def exported() -> dict[str, set[str]]:
    """Every sample name the hub's /metrics shows (one process, and a --processes parent), with its labels."""
    from datetime import UTC, datetime

    status = SourceStatus("din", BreakerState.CLOSED, 0, 0, datetime.now(UTC), None, None, None)
    metrics = HubMetrics(sources=lambda: [status])
    metrics.request_done("din.person", "emek-muqavilesi", "ok", "hit", 0.002)
    metrics.source_call_done("din", "ok", 0.02)
    text = generate_latest(metrics.registry).decode()
    parent = exposition(merge_metrics([text, text]), 2, 2).decode()
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(parent):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]
    found += [v["query"] for v in board["templating"]["list"] if v.get("type") == "query"]
    return found


def test_the_dashboard_has_latency_percentiles_per_service_and_per_source() -> None:
    text = "\n".join(expressions())
    assert "histogram_quantile(0.95, sum by (le, service) (rate(ehis_request_duration_seconds_bucket" in text
    assert "histogram_quantile(0.95, sum by (le, source) (rate(ehis_source_call_duration_seconds_bucket" in text


@pytest.mark.parametrize("expr", expressions())
def test_every_expression_uses_metrics_and_labels_the_hub_exports(expr: str) -> None:
    names = exported()
    used = set(re.findall(r"\behis_[a-z_]+", expr))
    assert used, f"no hub metric in {expr!r}"
    assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")
    for name in used:
        assert name in names, f"{name} is not exported (exported: {sorted(names)})"
    labels = set().union(*(names[n] for n in used))
    for selector in re.findall(r"\{([^}]*)\}", expr):
        for label in re.findall(r"([a-z_]+)\s*(?:=~|!=|!~|=)", selector):
            assert label in labels, f"label {label!r} of {expr!r} is not on {sorted(used)}"
    for grouping in re.findall(r"by \(([^)]*)\)", expr):
        for label in (part.strip() for part in grouping.split(",")):
            assert label in labels | {"le"}, f"grouping by {label!r} in {expr!r}"
    for query in re.findall(r"label_values\(\w+, (\w+)\)", expr):
        assert query in labels


def test_buckets_resolve_cache_hits_and_source_calls() -> None:
    m = HubMetrics()
    for seconds in (0.0012, 0.0018, 0.0025, 0.007, 0.018, 0.045, 9.5):
        m.request_done("din.person", "emek-muqavilesi", "ok", "miss", seconds)
    bounds = sorted(float(s.labels["le"]) for f in text_string_to_metric_families(generate_latest(m.registry).decode())
                    if f.name == "ehis_request_duration_seconds" for s in f.samples if s.name.endswith("_bucket")
                    and s.labels["le"] != "+Inf")
    assert len([b for b in bounds if 0.001 <= b <= 0.003]) >= 4  # cached answers: 1-3 ms
    assert len([b for b in bounds if 0.005 <= b <= 0.05]) >= 6  # uncached source calls: 5-50 ms
    assert 10.0 in bounds  # the default deadline
