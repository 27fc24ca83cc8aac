"""The prefix-cache hit rate an engine reports, from its Prometheus counters read before and after a
load point's measured phase.

Engines count prompt tokens looked up in their prefix cache and those found there; the hit rate of the
point is the ratio of the two counters' increases. Known counters (summed over their labels):

| engine | hits | lookups |
| --- | --- | --- |
| vLLM (V1 engine) | `vllm:prefix_cache_hits_total` | `vllm:prefix_cache_queries_total` |
| SGLang | `sglang:cached_tokens_total` | `sglang:prompt_tokens_total` |

Other engines (TGI, LMDeploy, Triton, `transformers serve`) export no such counter: no hit rate then,
unless the responses report `usage.prompt_tokens_details.cached_tokens` (see `metrics.py`). Behind a
Service with several replicas the counters are one replica's, whichever answered the scrape.
"""

from __future__ import annotations

import logging
import urllib.request
from dataclasses import dataclass

log = logging.getLogger("modelfleet_bench")

COUNTERS = (
    ("vllm:prefix_cache_hits", "vllm:prefix_cache_queries"),
    ("sglang:cached_tokens", "sglang:prompt_tokens"),
)
"""(hits, lookups) counter families, as the Prometheus parser names them (without `_total`)."""
SCRAPE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class EngineCounters:
    hits: float
    lookups: float
    source: str
    """The hits counter read, e.g. `vllm:prefix_cache_hits_total`."""


def parse_counters(text: str) -> EngineCounters | None:
    """The first known pair of prefix-cache counters in a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):  # typed or not: read the `_total` samples
        for sample in family.samples:
            if sample.name.endswith("_total"):
                name = sample.name.removesuffix("_total")
                totals[name] = totals.get(name, 0.0) + sample.value
    for hits, lookups in COUNTERS:
        if hits in totals and lookups in totals:
            return EngineCounters(totals[hits], totals[lookups], f"{hits}_total")
    return None


def read_engine_counters(url: str | None) -> EngineCounters | None:
    """The engine's prefix-cache counters now; None when there is no URL, it does not answer or it has
    none of the known counters (the point is measured all the same)."""
    if url is None:
        return None
    try:
        with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_SECONDS) as response:
            return parse_counters(response.read().decode("utf-8", "replace"))
    except (OSError, ValueError) as error:
        log.info("no prefix-cache counters from %s (%s)", url, error)
        return None


def hit_rate(before: EngineCounters | None, after: EngineCounters | None) -> tuple[float | None, str | None]:
    """(hit rate over the interval, counter it comes from); (None, None) when not measurable."""
    if before is None or after is None or before.source != after.source:
        return None, None
    lookups = after.lookups - before.lookups
    if lookups <= 0:
        return None, None
    return (after.hits - before.hits) / lookups, after.source
