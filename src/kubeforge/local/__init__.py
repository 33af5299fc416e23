"""kubeforge's local runner: kfp.local's orchestration with warm workers, caching, resume and parallel
tasks (runner.py), and the portability check behind `kubeforge check` (check.py)."""
