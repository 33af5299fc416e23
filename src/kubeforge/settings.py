"""Every `KUBEFORGE_*` environment variable, in one place: the ones kubeforge reads and the ones it sets for jobs.

Values are read when asked for (`HOME.read()`), never at import, so a changed environment is
seen at once. The README's "Settings" table lists the same variables (a test keeps them equal).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, the value used when it is unset or empty, and what it does."""

    name: str
    default: str
    description: str

    def read(self, environ: Mapping[str, str] | None = None, default: str | None = None) -> str:
        """The variable's value in `environ` (default: this process's environment), else `default` (when
        given: a caller that needs the variable set passes "") or the declared default."""
        env = os.environ if environ is None else environ
        return env.get(self.name) or (self.default if default is None else default)

    def take(self) -> str:
        """`read()`, and the variable removed from this process's environment (nothing it starts inherits it)."""
        return os.environ.pop(self.name, "") or self.default


# --- read by kubeforge ---
HOME = Setting(
    "KUBEFORGE_HOME", "", "state folder: local model servers, `config.json` of `kubeforge infra` (~/.kubeforge)"
)
ERROR_REPORT_DIR = Setting(
    "KUBEFORGE_ERROR_REPORT_DIR", "", "set by the local runner: where a failed task process writes its kubeforge error"
)
KFP_TOKEN = Setting("KUBEFORGE_KFP_TOKEN", "", "`kubeforge submit --kfp`: bearer token (another name: `--token-env`)")
TERRAFORM = Setting("KUBEFORGE_TERRAFORM", "", "`kubeforge infra`: the terraform binary (else .tools/bin, PATH)")
PROVIDER_MIRROR = Setting(
    "KUBEFORGE_PROVIDER_MIRROR", "", "`kubeforge infra`: a Terraform provider filesystem mirror folder"
)
SCHEDULER_URL = Setting(
    "KUBEFORGE_SCHEDULER_URL", "http://127.0.0.1:8765", "`kubeforge queue`, training `backend=queue`: the API"
)
TOKEN = Setting("KUBEFORGE_TOKEN", "", "`kubeforge queue`, training `backend=queue`: the team's bearer token")
ADMIN_TOKEN = Setting("KUBEFORGE_ADMIN_TOKEN", "", "`kubeforge queue serve`: the administrator's bearer token")
MODEL_URI = Setting("KUBEFORGE_MODEL_URI", "", "`kubeforge serve`: the model to serve when no MODEL_URI is given")
HOST = Setting("KUBEFORGE_HOST", "127.0.0.1", "`kubeforge serve`: the address the model server listens on")
SPARK_MASTER = Setting("KUBEFORGE_SPARK_MASTER", "local[*]", "preprocessing, Spark engine: the Spark master URL")
SPARK_SHUFFLE_PARTITIONS = Setting(
    "KUBEFORGE_SPARK_SHUFFLE_PARTITIONS", "4", "preprocessing, Spark engine: `spark.sql.shuffle.partitions`"
)
STORE_URL = Setting(
    "KUBEFORGE_STORE_URL", "", "`kubeforge queue serve`: the store URL when it carries a password (or `--store-file`)"
)
SCHEDULER_CA = Setting("KUBEFORGE_SCHEDULER_CA", "", "`kubeforge queue`, training `backend=queue`: a private CA (PEM)")
TOKEN_FILE = Setting(
    "KUBEFORGE_TOKEN_FILE", "", "training `backend=queue`: a file holding the team's token (a mounted secret)"
)
JOB_SERVICE_ACCOUNT = Setting(
    "KUBEFORGE_JOB_SERVICE_ACCOUNT", "", "scheduler, kubernetes backend: the service account of job pods"
)
JOB_GPU_TOLERATION = Setting(
    "KUBEFORGE_JOB_GPU_TOLERATION", "", "scheduler, kubernetes backend: the toleration GPU job pods get (JSON)"
)
JOB_ALLOWED_IMAGES = Setting(
    "KUBEFORGE_JOB_ALLOWED_IMAGES", "", 'scheduler, kubernetes backend: images per queue, `{"QUEUE or *": [IMAGE]}`'
)
PREEMPTED_FILE = Setting(
    "KUBEFORGE_PREEMPTED_FILE", "", "set by the training launcher: where a preempted worker records its checkpoint"
)
WARM_WORKER_START_TIMEOUT = Setting(
    "KUBEFORGE_WARM_WORKER_START_TIMEOUT",
    "180",
    "`kubeforge run --local`: seconds the warm worker may take to import and listen (then tasks start cold)",
)

# --- set by the scheduler in every job it launches (for the job's own code) ---
JOB_ID = Setting("KUBEFORGE_JOB_ID", "", "the job's id")
ATTEMPT = Setting("KUBEFORGE_ATTEMPT", "", "the attempt number (a retried job runs again with the next one)")
LAUNCH_KEY = Setting("KUBEFORGE_LAUNCH_KEY", "", "the attempt's idempotency key, `kf-JOB-ATTEMPT`")
WORKERS = Setting("KUBEFORGE_WORKERS", "", "how many workers the job was given")
ARRAY_JOB_ID = Setting("KUBEFORGE_ARRAY_JOB_ID", "", "the array's id, its first task's (array tasks only)")
ARRAY_TASK_ID = Setting("KUBEFORGE_ARRAY_TASK_ID", "", "this task's index in its array (array tasks only)")

READ: tuple[Setting, ...] = (
    HOME,
    ERROR_REPORT_DIR,
    KFP_TOKEN,
    TERRAFORM,
    PROVIDER_MIRROR,
    SCHEDULER_URL,
    TOKEN,
    ADMIN_TOKEN,
    MODEL_URI,
    HOST,
    SPARK_MASTER,
    SPARK_SHUFFLE_PARTITIONS,
    STORE_URL,
    SCHEDULER_CA,
    TOKEN_FILE,
    JOB_SERVICE_ACCOUNT,
    JOB_GPU_TOLERATION,
    JOB_ALLOWED_IMAGES,
    PREEMPTED_FILE,
    WARM_WORKER_START_TIMEOUT,
)
"""The variables kubeforge reads."""

JOB_ENVIRONMENT: tuple[Setting, ...] = (JOB_ID, ATTEMPT, LAUNCH_KEY, WORKERS, ARRAY_JOB_ID, ARRAY_TASK_ID)
"""The variables the scheduler sets for each job it launches."""


def settings_table() -> str:
    """The README's table of every variable (Markdown), in the order above."""
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for setting in READ + JOB_ENVIRONMENT:
        default = f"`{setting.default}`" if setting.default else ""
        prefix = "set by the scheduler in each job: " if setting in JOB_ENVIRONMENT else ""
        rows.append(f"| `{setting.name}` | {default} | {prefix}{setting.description} |")
    return "\n".join(rows)


__all__ = [
    "ADMIN_TOKEN",
    "ARRAY_JOB_ID",
    "ARRAY_TASK_ID",
    "ATTEMPT",
    "ERROR_REPORT_DIR",
    "HOME",
    "HOST",
    "JOB_ALLOWED_IMAGES",
    "JOB_ENVIRONMENT",
    "JOB_GPU_TOLERATION",
    "JOB_SERVICE_ACCOUNT",
    "JOB_ID",
    "KFP_TOKEN",
    "PREEMPTED_FILE",
    "SCHEDULER_CA",
    "STORE_URL",
    "TOKEN_FILE",
    "LAUNCH_KEY",
    "MODEL_URI",
    "PROVIDER_MIRROR",
    "READ",
    "SCHEDULER_URL",
    "SPARK_MASTER",
    "SPARK_SHUFFLE_PARTITIONS",
    "Setting",
    "TERRAFORM",
    "TOKEN",
    "WORKERS",
    "WARM_WORKER_START_TIMEOUT",
    "settings_table",
]
