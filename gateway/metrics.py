"""``/metrics``: the gateway's status in the Prometheus text format, by prometheus-client.

Imported on the first scrape only (see :func:`gateway.health.render_metrics`):
prometheus-client imports http.server, wsgiref and email, 1.4 MB of resident memory that a
gateway nobody scrapes does not need (docs/performance.md).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["render"]


class _StatusCollector(Collector):
    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status

    def collect(self) -> list[Metric]:
        s = self.status
        out: list[Metric] = []
        up = GaugeMetricFamily(
            "edgesdk_driver_up", "1 when the driver is online", labels=["device", "driver", "state"]
        )
        counters = CounterMetricFamily(
            "edgesdk_driver_events", "driver counters", labels=["device", "counter"]
        )
        for name, d in sorted(s["drivers"].items()):
            up.add_metric([name, d["driver"], d["state"]], 1.0 if d["state"] == "online" else 0.0)
            for counter, value in sorted(d["counters"].items()):
                counters.add_metric([name, counter], float(value))
        out += [up, counters]
        lanes = GaugeMetricFamily("edgesdk_lane_batches", "sealed batches waiting", labels=["lane"])
        lbytes = GaugeMetricFamily("edgesdk_lane_bytes", "bytes waiting", labels=["lane"])
        age = GaugeMetricFamily(
            "edgesdk_lane_oldest_unsent_seconds", "age of the oldest unsent batch", labels=["lane"]
        )
        for lane, v in s["lanes"].items():
            lanes.add_metric([lane], float(v["batches"]))
            lbytes.add_metric([lane], float(v["bytes"]))
            age.add_metric([lane], float(v["oldest_age"] or 0.0))
        out += [lanes, lbytes, age]
        up_link = s["uplink"]
        out.append(
            GaugeMetricFamily(
                "edgesdk_uplink_connected",
                "1 when connected",
                value=1.0 if up_link["connected"] else 0.0,
            )
        )
        pub = CounterMetricFamily(
            "edgesdk_published_batches", "batches acknowledged by the broker", labels=["lane"]
        )
        for lane, n in up_link["published_by_lane"].items():
            pub.add_metric([lane], float(n))
        out.append(pub)
        for name, key, doc in (
            ("edgesdk_uplink_connects", "connects", "successful connections"),
            ("edgesdk_uplink_publish_errors", "publish_errors", "failed publishes"),
            (
                "edgesdk_uplink_ack_errors",
                "ack_errors",
                "delivered batches the store could not remove yet (retried)",
            ),
            (
                "edgesdk_uplink_published_early",
                "published_early",
                "alarm batches the broker acknowledged before their commit ended",
            ),
        ):
            out.append(CounterMetricFamily(name, doc, value=float(up_link[key])))
        g = s["gateway"]
        for name, key, doc in (
            ("edgesdk_readings_in", "readings_in", "readings received from drivers"),
            ("edgesdk_events_in", "events_in", "events received from drivers"),
            ("edgesdk_rule_events", "rule_events", "events raised by the rules"),
            ("edgesdk_signatures", "signatures", "batches signed"),
            ("edgesdk_store_errors", "store_errors", "failed store transactions"),
            ("edgesdk_shed_batches", "shed_batches", "telemetry batches shed by retention"),
        ):
            out.append(CounterMetricFamily(name, doc, value=float(g[key])))
        out.append(GaugeMetricFamily("edgesdk_boot", "boot counter", value=float(g["boot"])))
        out.append(
            GaugeMetricFamily(
                "edgesdk_publish_rate",
                "batches/s over the last scrape interval",
                value=float(up_link.get("rate", 0.0)),
            )
        )
        return out


def render(status: dict[str, Any]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(status))
    info = Gauge(
        "edgesdk_last_error_info", "the last error, as a label", ["error"], registry=registry
    )
    if status["gateway"].get("last_error"):
        info.labels(error=str(status["gateway"]["last_error"])[:200]).set(1)
    return generate_latest(registry)
