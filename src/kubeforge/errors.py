"""The kubeforge exception hierarchy; each class carries the CLI exit code it maps to."""

from __future__ import annotations


class KubeforgeError(Exception):
    """Base of every error kubeforge raises on purpose; its message is meant for users."""

    exit_code = 1


class InputError(KubeforgeError):
    """The user's data or parameters are wrong: the message names the field and the fix."""

    exit_code = 2


class ArtifactError(KubeforgeError):
    """An artifact cannot be read or written (missing object, bad URI, storage failure)."""

    exit_code = 3


class TrainingError(KubeforgeError):
    """A training run failed; the message carries the workers' own error."""

    exit_code = 4


class ServingError(KubeforgeError):
    """The model server could not be started, reached or stopped."""

    exit_code = 5


__all__ = ["ArtifactError", "InputError", "KubeforgeError", "ServingError", "TrainingError"]
