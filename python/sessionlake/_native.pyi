"""Type stubs of the native module. The public API is `sessionlake`'s; see its docstrings."""

from os import PathLike

__version__: str

class Query:
    def columns(self) -> list[str]: ...
    def schema(self) -> object:
        """An object with `__arrow_c_schema__`."""
    def collect(self, limit: int | None = None) -> object:
        """Runs the statement; an object with `__arrow_c_stream__` holding the whole result."""
    def stream(self) -> object:
        """Starts the statement; an object with `__arrow_c_stream__` that runs it as it is read."""
    def text(self, rows: int) -> tuple[str, bool]: ...
    def html(self, rows: int) -> tuple[str, bool]: ...

class Connection:
    def __init__(
        self,
        lakes: list[tuple[str, str]],
        memory_limit: str | None = None,
        partitions: int | None = None,
        s3_endpoint: str | None = None,
    ) -> None: ...
    def attach(self, name: str, location: str) -> None: ...
    def register(self, name: str, data: object) -> None: ...
    def set(self, key: str, value: str) -> None: ...
    def get(self, key: str) -> str | None: ...
    def sql(self, query: str) -> Query: ...
    def tables(self) -> list[str]: ...
    def memory(self) -> str: ...

def run_job(
    job: str | PathLike[str],
    start: str | None = None,
    end: str | None = None,
    full: bool = False,
    dry_run: bool = False,
) -> str:
    """Runs a lake job; its summary as JSON."""
