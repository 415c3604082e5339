"""Prometheus metrics of one application (own registry, no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """The application's collectors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "doorstep_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "doorstep_http_request_duration_seconds",
            "HTTP request latency by route.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.websockets = Gauge(
            "doorstep_websockets_open", "Open WebSocket connections.", registry=self.registry
        )
        self.logins = Counter(
            "doorstep_logins", "Sign-in attempts by outcome.", ["outcome"], registry=self.registry
        )

        self.reading_open = Gauge(
            "doorstep_reading_requests_open",
            "Reading requests waiting or claimed, by specialty and priority (last 30 days).",
            ["specialty", "priority"],
            registry=self.registry,
        )
        self.reading_overdue = Gauge(
            "doorstep_reading_requests_overdue",
            "Open reading requests past their due time, by specialty and priority.",
            ["specialty", "priority"],
            registry=self.registry,
        )
        self.reading_turnaround = Gauge(
            "doorstep_reading_turnaround_minutes",
            "Median minutes from request to first claim (stage=claim) and to signature "
            "(stage=sign), requests of the last 30 days, by specialty and priority.",
            ["specialty", "priority", "stage"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """Prometheus text exposition."""
        return generate_latest(self.registry)
