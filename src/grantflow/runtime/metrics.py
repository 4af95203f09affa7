"""Prometheus instruments: one registry per process; counters the workers feed, gauges read at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The instruments of one process; a fresh registry each, so that several apps in one process stay apart."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.mail_sent = Counter("grantflow_mail_sent", "Messages the SMTP server accepted", registry=self.registry)
        self.mail_failed = Counter(
            "grantflow_mail_failed", "Messages given up: permanent refusal or retries used up", registry=self.registry
        )
        self.mail_retried = Counter(
            "grantflow_mail_retried",
            "Temporary failures that were scheduled for another attempt",
            registry=self.registry,
        )
        self.mail_suppressed = Counter(
            "grantflow_mail_suppressed", "Messages not sent because e-mail was disabled", registry=self.registry
        )
        self.mail_latency = Histogram(
            "grantflow_mail_delivery_latency_seconds",
            "From the state change that wrote a message to the server's acceptance",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600),
            registry=self.registry,
        )
        self.outbox_messages = Gauge(
            "grantflow_outbox_messages", "Outbox messages by status (all replicas)", ["status"], registry=self.registry
        )
        self.mail_queue_depth = Gauge(
            "grantflow_mail_queue_depth", "Messages waiting to be sent (PENDING and SENDING)", registry=self.registry
        )
