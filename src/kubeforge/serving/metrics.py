"""Prometheus metrics of the model server, in a registry of its own (one per server instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServerMetrics:
    """Requests, latency, batch sizes and queue depth, labelled by model and contract."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "kubeforge_requests",
            "Inference requests answered, by model, contract (v2, vertex, sagemaker) and HTTP status code.",
            ["model", "contract", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "kubeforge_request_latency_seconds",
            "Time from the request's arrival to its answer, for inference requests.",
            ["model", "contract"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "kubeforge_batch_size_rows",
            "Rows per forward pass of the network, after adaptive batching.",
            ["model"],
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.unknown_categories = Counter(
            "kubeforge_unknown_category_rows",
            "Request rows whose category had no level of its own in training (the reserved level, zeros, "
            "or a refusal under the 'error' policy), by model and feature column.",
            ["model", "column"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "kubeforge_queue_depth",
            "Requests waiting for a batch, per model.",
            ["model"],
            registry=self.registry,
        )

    def observe_request(self, model: str, contract: str, code: int, seconds: float) -> None:
        """Count one answered inference request and record its latency."""
        self.requests.labels(model, contract, str(code)).inc()
        self.latency.labels(model, contract).observe(seconds)

    def count_unknown_categories(self, model: str, tally: dict[str, int]) -> None:
        """Add one request's rows with unseen or rare categories, per column."""
        for column, rows in tally.items():
            self.unknown_categories.labels(model, column).inc(rows)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


__all__ = ["BATCH_SIZE_BUCKETS", "CONTENT_TYPE", "LATENCY_BUCKETS_S", "ServerMetrics"]
