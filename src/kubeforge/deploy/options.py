"""Settings of the remote deploy targets: the ones every target shares, and `target_options` per target.

Shared settings (storage URI, image, canary share, replicas, cpu, memory, gpus) are parameters of
their own; what only one platform knows (a namespace, an IAM role, a project) travels in the
`target_options` JSON object, as the training component's `backend_options` does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubeforge import IMAGE
from kubeforge.errors import InputError

TARGET_OPTIONS: dict[str, tuple[str, ...]] = {
    "local": (),
    "kserve": ("namespace", "service_account"),
    "sagemaker": ("role_arn", "instance_type", "region"),
    "vertex": (
        "project",
        "location",
        "endpoint_name",
        "machine_type",
        "accelerator_type",
        "service_account",
        "api_endpoint",
    ),
}
REQUIRED_OPTIONS: dict[str, tuple[str, ...]] = {"sagemaker": ("role_arn",), "vertex": ("project", "location")}


@dataclass(frozen=True)
class RemoteOptions:
    """How a remote target runs the model: where it is stored, what runs it, how it scales.

    `canary_traffic_percent` is the share of traffic a new model gets (-1: all of it);
    `target_options` holds the target's own settings (see TARGET_OPTIONS).
    """

    storage_uri: str = ""
    image: str = IMAGE
    canary_traffic_percent: int = -1
    min_replicas: int = 1
    max_replicas: int = 1
    cpu: str = "1"
    memory: str = "2Gi"
    gpus: int = 0
    timeout_s: float = 900.0
    target_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not -1 <= self.canary_traffic_percent <= 100:
            raise InputError(
                f"canary_traffic_percent: {self.canary_traffic_percent} is not within 0-100 (or -1 for all traffic)"
            )
        if self.gpus < 0:
            raise InputError(f"gpus: must be 0 or more, got {self.gpus}")
        if self.timeout_s <= 0:
            raise InputError(f"timeout_s: must be positive, got {self.timeout_s:g}")

    @classmethod
    def from_parameters(cls, target: str, target_options: str = "{}", image: str = "", **values: Any) -> RemoteOptions:
        """Options from the component's parameters: `target_options` JSON parsed and checked, "" image = IMAGE."""
        return cls(image=image or IMAGE, target_options=parse_target_options(target, target_options), **values)

    def option(self, key: str, default: str = "") -> str:
        """One target option as text, `default` when absent."""
        value = self.target_options.get(key)
        return default if value is None or value == "" else str(value)


def parse_target_options(target: str, text: str) -> dict[str, Any]:
    """`text` (a JSON object) checked against what `target` accepts; errors name the key and the valid ones."""
    try:
        options = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise InputError(f"target_options: not valid JSON ({exc.msg})") from exc
    if not isinstance(options, dict):
        raise InputError('target_options: expected a JSON object such as {"namespace": "ml"}')
    check_target_options(target, options)
    return options


def check_target_options(target: str, options: Mapping[str, Any]) -> None:
    """Refuse keys `target` does not know and missing required ones, naming the valid keys."""
    valid = TARGET_OPTIONS.get(target, ())
    unknown = sorted(set(options) - set(valid))
    if unknown:
        accepted = ", ".join(valid) or "none"
        raise InputError(
            f"target_options: {', '.join(unknown)} not known to the {target} target; it accepts {accepted}"
        )
    missing = [key for key in REQUIRED_OPTIONS.get(target, ()) if not options.get(key)]
    if missing:
        raise InputError(f"target_options: the {target} target needs {', '.join(missing)}")


__all__ = ["REQUIRED_OPTIONS", "TARGET_OPTIONS", "RemoteOptions", "check_target_options", "parse_target_options"]
