"""The component catalogue, one package per components/<stage>/<name>/; a pipeline task's process starts here."""

from kubeforge.errors import install_error_report_hook

install_error_report_hook()
