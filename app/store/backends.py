"""The `databases` backends the store runs on: `databases`' own, with each statement shape compiled once.

`databases` compiles every statement it is given through SQLAlchemy, about 1.7 ms for a task
UPDATE … RETURNING on this machine kind, where the statement itself takes a tenth of that: most of
a worker's CPU per task. SQLAlchemy's own engine caches compiled statements by their cache key
(the statement's shape; the values travel apart as extracted parameters); these connections do
the same. Statements whose text depends on their values (an expanding `IN`) are compiled each time.
"""

from typing import Any

from databases import Database, DatabaseURL
from databases.backends.postgres import PostgresBackend, PostgresConnection
from databases.backends.sqlite import CompilationContext
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import Compiled
from sqlalchemy.sql.ddl import DDLElement

from app.core.wire import dumps, loads
from app.store.sqlite import OwnerThreadConnection, SharedSQLiteBackend

CACHE_SIZE = 500  # statement shapes kept per process; the store uses a few dozen


class CompiledCache:
    def __init__(self) -> None:
        self._compiled: dict[Any, Compiled] = {}

    def compile(self, query: ClauseElement, dialect: Dialect) -> tuple[Compiled, dict[str, Any]] | None:
        """The compiled shape and this statement's parameters; None when it must be compiled alone."""
        if isinstance(query, DDLElement):
            return None
        key = query._generate_cache_key()
        if key is None:
            return None
        compiled = self._compiled.get(key.key)
        if compiled is None:
            compiled = query.compile(dialect=dialect, cache_key=key)
            if compiled.post_compile_params or compiled.literal_execute_params:  # type: ignore[attr-defined]
                return None
            if len(self._compiled) >= CACHE_SIZE:
                self._compiled.clear()
            self._compiled[key.key] = compiled
        return compiled, compiled.construct_params(extracted_parameters=key.bindparams)


class CachedSQLiteConnection(OwnerThreadConnection):
    cache: CompiledCache  # the backend's, set as it hands the connection out

    def _compile(self, query: ClauseElement) -> Any:
        if (cached := self.cache.compile(query, self._dialect)) is None:
            return super()._compile(query)
        compiled, params = cached
        processors = compiled._bind_processors  # type: ignore[attr-defined]
        args = [processors[key](params[key]) if key in processors else params[key]
                for key in compiled.positiontup]  # type: ignore[attr-defined]
        context = self._dialect.execution_ctx_cls()
        context.dialect = self._dialect
        context.result_column_struct = (
            compiled._result_columns, compiled._ordered_columns,  # type: ignore[attr-defined]
            compiled._textual_ordered_columns, compiled._ad_hoc_textual,  # type: ignore[attr-defined]
            compiled._loose_column_name_matching,  # type: ignore[attr-defined]
        )
        return compiled.string, args, compiled._result_columns, CompilationContext(context)  # type: ignore[attr-defined]


class CachedPostgresConnection(PostgresConnection):
    cache: CompiledCache

    def _compile(self, query: ClauseElement) -> Any:
        if (cached := self.cache.compile(query, self._dialect)) is None:
            return super()._compile(query)
        compiled, params = cached
        ordered = sorted(params.items())
        text = compiled.string % {key: f"${i}" for i, (key, _) in enumerate(ordered, start=1)}
        processors = compiled._bind_processors  # type: ignore[attr-defined]
        args = [processors[key](value) if key in processors else value for key, value in ordered]
        return text, args, compiled._result_columns  # type: ignore[attr-defined]


def _json_columns(dialect: Dialect) -> None:
    """JSON columns written and read by the one JSON path (core/wire.py), as SQLAlchemy's
    `json_serializer` would set them on an engine."""
    dialect._json_serializer = dumps  # type: ignore[attr-defined]
    dialect._json_deserializer = loads  # type: ignore[attr-defined]


class CachedSQLiteBackend(SharedSQLiteBackend):
    def __init__(self, database_url: DatabaseURL | str, **options: Any) -> None:
        super().__init__(database_url, **options)
        _json_columns(self._dialect)
        self._cache = CompiledCache()

    def connection(self) -> CachedSQLiteConnection:
        connection = CachedSQLiteConnection(self._pool, self._dialect)
        connection.cache = self._cache
        return connection


class CachedPostgresBackend(PostgresBackend):
    def __init__(self, database_url: DatabaseURL | str, **options: Any) -> None:
        super().__init__(database_url, **options)
        _json_columns(self._dialect)
        self._cache = CompiledCache()

    def connection(self) -> CachedPostgresConnection:
        connection = CachedPostgresConnection(self, self._dialect)
        connection.cache = self._cache
        return connection


class TaskDatabase(Database):
    """`databases`' Database on the backends above; `sql_dialect` is the SQLAlchemy dialect they compile with."""

    SUPPORTED_BACKENDS = {
        **Database.SUPPORTED_BACKENDS,
        "sqlite": "app.store.backends:CachedSQLiteBackend",
        "postgresql": "app.store.backends:CachedPostgresBackend",
        "postgres": "app.store.backends:CachedPostgresBackend",
    }

    @property
    def sql_dialect(self) -> Dialect:
        return self._backend._dialect  # type: ignore[attr-defined,no-any-return]
