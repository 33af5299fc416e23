"""Build-time tools (catalogue generation, staleness and reuse checks, Terraform checks); not in the wheel."""
