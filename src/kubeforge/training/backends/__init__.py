"""Moved to `kubeforge.launch`. These modules only keep the scheduler's backends importing until they
adopt the launch layer themselves; new code imports `kubeforge.launch` and `kubeforge.kube_client`."""
