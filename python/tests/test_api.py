"""The package documents itself: docstrings on every public name, a useful `help()`, and the
type stubs and `py.typed` marker in the installed package."""

from __future__ import annotations

import inspect
import pydoc
from pathlib import Path

import sessionlake


def test_every_public_name_has_a_docstring() -> None:
    for name in sessionlake.__all__:
        item = getattr(sessionlake, name)
        assert inspect.getdoc(item), f"sessionlake.{name} has no docstring"
    for cls in (sessionlake.Connection, sessionlake.Result):
        for name, member in inspect.getmembers(cls):
            if not name.startswith("_") and callable(member):
                assert inspect.getdoc(member), f"{cls.__name__}.{name} has no docstring"


def test_help_on_connect_names_every_argument_and_error() -> None:
    text = pydoc.render_doc(sessionlake.connect, renderer=pydoc.plaintext)
    for word in ("lakes", "memory_limit", "partitions", "s3_endpoint", "LakeError", "OptionError"):
        assert word in text, word
    assert list(inspect.signature(sessionlake.connect).parameters) == [
        "lakes",
        "memory_limit",
        "partitions",
        "s3_endpoint",
    ]


def test_the_installed_package_carries_its_type_information() -> None:
    package = Path(sessionlake.__file__).parent
    assert (package / "py.typed").is_file()
    stub = (package / "_native.pyi").read_text()
    for name in ("class Connection", "class Query", "def run_job"):
        assert name in stub
    assert sessionlake.__version__ == "0.1.0"
