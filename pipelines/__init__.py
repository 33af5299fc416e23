"""The built-in pipelines, one package per pipelines/<name>/ beside its compiled golden YAML."""
