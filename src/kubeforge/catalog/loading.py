"""Loading a catalogue component's compiled spec the ways other teams reference it.

kfp's own loaders take a file path or an http(s)/gs URL; `load_component` also takes a
`file://` URL (read with the standard library's URL opener), so a pipeline can name every
component by URL whether the catalogue is checked out locally or served from a host.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubeforge.errors import InputError


def load_component(reference: str | Path) -> Any:
    """A KFP component from a component.yaml given as a path, `file://`, `http(s)://` or `gs://` URL."""
    from kfp import components

    text = str(reference)
    scheme = urlsplit(text).scheme
    if scheme in ("http", "https", "gs"):
        return components.load_component_from_url(text)
    if scheme == "file":
        try:
            with urllib.request.urlopen(text) as response:
                return components.load_component_from_text(response.read().decode("utf-8"))
        except OSError as exc:
            raise InputError(f"component {text}: cannot be read ({exc}); check the URL") from exc
    if scheme:
        raise InputError(f"component {text}: unsupported scheme {scheme!r}; use a path, file://, http(s):// or gs://")
    if not Path(text).is_file():
        raise InputError(f"component {text}: no such file; give the path of a component.yaml")
    return components.load_component_from_file(text)


__all__ = ["load_component"]
