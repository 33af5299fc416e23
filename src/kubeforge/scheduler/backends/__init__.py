"""Scheduler backends behind one protocol: local processes, SLURM, Kubernetes."""

from __future__ import annotations

from kubeforge.scheduler.backends.base import LOST_EXIT_CODE, Backend, job_command, job_environment

__all__ = ["LOST_EXIT_CODE", "Backend", "job_command", "job_environment"]
