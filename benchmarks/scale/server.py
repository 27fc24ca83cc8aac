"""Counters of the API server's ``/metrics`` page that a phase reads before and after itself."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.scale.kubeapi import KubeApi

FAMILIES = (
    "apiserver_request_total",
    "apiserver_flowcontrol_rejected_requests_total",
    "apiserver_flowcontrol_request_wait_duration_seconds_sum",
    "apiserver_flowcontrol_request_wait_duration_seconds_count",
)


@dataclass(frozen=True)
class ServerCounters:
    requests: float = 0.0
    """``apiserver_request_total`` summed over every client, verb, resource and code."""
    rejected: float = 0.0
    """Requests API Priority and Fairness turned away (HTTP 429)."""
    wait_seconds: dict[str, float] = field(default_factory=dict)
    """Summed queue wait of APF per priority level."""
    waited: dict[str, float] = field(default_factory=dict)
    """Requests per priority level that went through APF's queues."""


def scrape(api: KubeApi) -> ServerCounters:
    # Only the lines of the families wanted are parsed: the whole page is megabytes of histograms.
    page = "\n".join(line for line in api.text("/metrics").splitlines() if line.startswith(FAMILIES))
    requests = rejected = 0.0
    wait: dict[str, float] = {}
    waited: dict[str, float] = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            level = sample.labels.get("priority_level", "")
            if sample.name == "apiserver_request_total":
                requests += sample.value
            elif sample.name == "apiserver_flowcontrol_rejected_requests_total":
                rejected += sample.value
            elif sample.name.endswith("_sum"):
                wait[level] = wait.get(level, 0.0) + sample.value
            elif sample.name.endswith("_count"):
                waited[level] = waited.get(level, 0.0) + sample.value
    return ServerCounters(requests, rejected, wait, waited)


def delta(before: ServerCounters, after: ServerCounters, seconds: float) -> dict[str, object]:
    """What happened between two scrapes: requests per second, APF rejections, mean APF wait per level."""
    mean_wait = {
        level: round(1000 * (after.wait_seconds[level] - before.wait_seconds.get(level, 0.0)) / count, 3)
        for level in after.waited
        if (count := after.waited[level] - before.waited.get(level, 0.0)) > 0
    }
    return {
        "requests": after.requests - before.requests,
        "requests_per_second": round((after.requests - before.requests) / seconds, 2) if seconds else None,
        "apf_rejected": after.rejected - before.rejected,
        "apf_mean_wait_ms": mean_wait,
    }


def throttled_seconds(page: str) -> float:
    """Seconds a Go component's requests waited in its own client-side rate limiter (client-go's
    ``rest_client_rate_limiter_duration_seconds``), summed: how much its QPS/burst setting held it back."""
    prefix = "rest_client_rate_limiter_duration_seconds_sum"
    return sum(float(line.rsplit(" ", 1)[1]) for line in page.splitlines() if line.startswith(prefix))
