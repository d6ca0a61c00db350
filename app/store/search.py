"""Full-text search over tasks: the index each database keeps, and the condition a text filter becomes.

What matches, the same on SQLite and PostgreSQL: a task's searchable text is its parameters, its
result_data and its error_message (for the JSON ones, every object key and every string, number
and true/false value, decoded; the first MAX_FIELD characters of each of the three). Its tokens are
the runs of letters and digits in that text, compared without regard to case. A query's words are
the runs of letters and digits in the query; a task matches when every word is the beginning of
one of its tokens (`proc` finds "processing", `data_processing` finds tasks with "data" and
"processing"). A query without letters or digits filters nothing. Known edges where the two
databases may differ: numbers beyond 15 significant digits or in exponent notation (each database
prints them its own way), texts longer than MAX_FIELD (cut in each database's own key order),
words over 2,000 characters (PostgreSQL does not index them).

SQLite: a contentless FTS5 index (`unicode61 remove_diacritics 0`: folds case, keeps accents) of
that text, kept by triggers on insert, on a change of those three columns and on delete, keyed by
the task's rowid. PostgreSQL: a `search` tsvector column on `tasks` with a GIN index, filled by a
BEFORE trigger on insert and on a change of those three columns; the text has every
non-alphanumeric replaced by a space before `to_tsvector('simple', …)`, so both tokenize alike, and
a query is `word:* & …`. A progress update touches neither, so the hot path does not pay.

Reading them (`TaskQueries._search_page`, `_search_page_postgres`): both indexes read every match of a
prefix before the first one, half the index for a common word. SQLite: each word becomes the whole
terms it begins (its `fts5vocab` table), which FTS5 reads lazily; few matches are read and sorted;
for many, the page is looked for among the newest tasks first (`window`), and `total` is counted
reading the index newest first. PostgreSQL (whose planner cannot tell a rare prefix from a common
one): the page is looked for among the newest tasks first, each row's tsvector tested; only when
they do not hold it is the GIN index read (the word is rare then), and `total` is counted among the
newest tasks when they already hold COUNT_CAP matches.
"""

import re
from typing import Any

import sqlalchemy as sa
from databases.core import Connection
from sqlalchemy.dialects.postgresql import TSQUERY

from app.store.db import Db
from app.store.tables import tasks

MAX_FIELD = 100_000  # characters of each of parameters, result and error that are indexed
WINDOWS = (2_000, 20_000)  # SQLite: the newest tasks a page of a common word is looked for among first
FEW = 5_000  # SQLite: matches few enough to read them all and sort them
MAX_TERMS = 30  # SQLite: a query word standing for more terms than this stays a prefix query
WORD = re.compile(r"[^\W_]+")
# what `has_index` looks for: the triggers (and on SQLite the vocabulary table)
PARTS = {"sqlite": ("task_search_insert", "task_search_change", "task_search_delete", "task_search_vocab"),
         "postgresql": ("task_search_insert", "task_search_change")}


def words(text: str) -> list[str]:
    return [word.lower() for word in WORD.findall(text)]


def _sqlite_json(column: str) -> str:
    """Keys and scalar values of a JSON column, decoded, separated by spaces (NULL for SQL NULL)."""
    value = ("CASE type WHEN 'text' THEN atom WHEN 'integer' THEN atom WHEN 'real' THEN atom "
             "WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' END")
    return (f"(SELECT group_concat(coalesce(CASE WHEN typeof(key) = 'text' THEN key END, '') || ' ' || "
            f"coalesce({value}, ''), ' ') FROM json_tree({column}))")


def _sqlite_body(row: str) -> str:
    return " || ' ' || ".join(f"coalesce(substr({part}, 1, {MAX_FIELD}), '')" for part in (
        _sqlite_json(f"{row}.parameters"), _sqlite_json(f"{row}.result_data"), f"{row}.error_message"))


_CHANGED = ("OLD.parameters IS NOT NEW.parameters OR OLD.result_data IS NOT NEW.result_data "
            "OR OLD.error_message IS NOT NEW.error_message")

SQLITE_SCHEMA = [
    # contentless: the index holds the tokens only, not a second copy of the text; a row is removed
    # with the 'delete' command given the text it was indexed with, made again from the old values
    """CREATE VIRTUAL TABLE task_search USING fts5(body, content='', tokenize='unicode61 remove_diacritics 0',
       detail='none')""",
    "CREATE VIRTUAL TABLE task_search_vocab USING fts5vocab(task_search, 'row')",  # its terms, in order
    f"""CREATE TRIGGER task_search_insert AFTER INSERT ON tasks BEGIN
          INSERT INTO task_search (rowid, body) VALUES (NEW.rowid, {_sqlite_body('NEW')});
        END""",
    f"""CREATE TRIGGER task_search_change AFTER UPDATE OF parameters, result_data, error_message ON tasks
        WHEN {_CHANGED} BEGIN
          INSERT INTO task_search (task_search, rowid, body) VALUES ('delete', OLD.rowid, {_sqlite_body('OLD')});
          INSERT INTO task_search (rowid, body) VALUES (NEW.rowid, {_sqlite_body('NEW')});
        END""",
    f"""CREATE TRIGGER task_search_delete AFTER DELETE ON tasks BEGIN
          INSERT INTO task_search (task_search, rowid, body) VALUES ('delete', OLD.rowid, {_sqlite_body('OLD')});
        END""",
    f"INSERT INTO task_search (rowid, body) SELECT rowid, {_sqlite_body('tasks')} FROM tasks",  # those stored
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS task_search_insert", "DROP TRIGGER IF EXISTS task_search_change",
               "DROP TRIGGER IF EXISTS task_search_delete", "DROP TABLE IF EXISTS task_search_vocab",
               "DROP TABLE IF EXISTS task_search"]

POSTGRES_SCHEMA = [
    """CREATE OR REPLACE FUNCTION task_search_json(doc jsonb) RETURNS text
       LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
         SELECT string_agg(part #>> '{}', ' ') FROM (
           SELECT jsonb_path_query(doc, 'strict $.** ? (@.type() == "object").keyvalue().key')
           UNION ALL
           SELECT jsonb_path_query(doc, 'strict $.** ? (@.type() != "object" && @.type() != "array")')
         ) AS parts (part) $$""",
    f"""CREATE OR REPLACE FUNCTION task_search_document(parameters jsonb, result_data jsonb, error_message text)
       RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
         SELECT strip(to_tsvector('simple', regexp_replace(
           coalesce(left(task_search_json(parameters), {MAX_FIELD}), '') || ' ' ||
           coalesce(left(task_search_json(result_data), {MAX_FIELD}), '') || ' ' ||
           coalesce(left(error_message, {MAX_FIELD}), ''), '[^[:alnum:]]+', ' ', 'g'))) $$""",
    """CREATE OR REPLACE FUNCTION task_search_fill() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         NEW.search := task_search_document(NEW.parameters, NEW.result_data, NEW.error_message);
         RETURN NEW;
       END $$""",
    "ALTER TABLE tasks ADD COLUMN IF NOT EXISTS search tsvector",
    "DROP TRIGGER IF EXISTS task_search_insert ON tasks",
    "DROP TRIGGER IF EXISTS task_search_change ON tasks",
    """CREATE TRIGGER task_search_insert BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION task_search_fill()""",
    f"""CREATE TRIGGER task_search_change BEFORE UPDATE OF parameters, result_data, error_message ON tasks
        FOR EACH ROW WHEN ({_CHANGED.replace(' IS NOT ', ' IS DISTINCT FROM ')})
        EXECUTE FUNCTION task_search_fill()""",
    """UPDATE tasks SET search = task_search_document(parameters, result_data, error_message)
       WHERE search IS NULL""",  # the tasks already stored
    "CREATE INDEX IF NOT EXISTS ix_tasks_search ON tasks USING gin (search)",
]


async def has_index(connection: Db | Connection, dialect: str) -> bool:
    names = ", ".join(repr(name) for name in PARTS[dialect])
    if dialect == "sqlite":
        query = f"SELECT count(*) FROM sqlite_master WHERE name IN ({names})"
    else:
        query = ("SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                 f"WHERE relname = 'tasks' AND tgname IN ({names})")
    return await connection.fetch_val(query) == len(PARTS[dialect])


async def build_index(connection: Connection, dialect: str) -> None:
    """The index and its triggers, filled from the tasks stored; the caller holds writers off."""
    for statement in (SQLITE_DROP + SQLITE_SCHEMA) if dialect == "sqlite" else POSTGRES_SCHEMA:
        await connection.execute(statement)


def _prefixes(found: list[str]) -> str:
    return " AND ".join(f'"{word}"*' for word in found)  # the words are letters and digits: nothing to escape


async def expanded(connection: Db | Connection, found: list[str]) -> str | None:
    """SQLite: the FTS5 query for these words with each word's prefix replaced by the terms it begins
    (when there are at most MAX_TERMS); None when a word begins no term at all (nothing matches).

    FTS5 reads a prefix query's every match before the first one (the merged lists of all its terms),
    half the index for a common word, while a query of whole terms reads only what it is asked for:
    the newest matches, a rowid range."""
    parts = []
    for word in found:
        terms = [row[0] for row in await connection.fetch_all(
            "SELECT term FROM task_search_vocab WHERE term >= :word AND term < :end LIMIT :n",
            {"word": word, "end": word + "\U0010ffff", "n": MAX_TERMS + 1})]
        if not terms:
            return None
        whole = " OR ".join(f'"{term}"' for term in terms)  # tokens are letters and digits: no quotes
        parts.append(f'"{word}"*' if len(terms) > MAX_TERMS else f"({whole})")
    return " AND ".join(parts)


def _hits(expression: str, floor: int | None = None, ceiling: int | None = None) -> sa.Select[Any]:
    """SQLite: the rowids of the matching tasks (from `floor` on, up to `ceiling`)."""
    query = sa.select(sa.literal_column("rowid")).select_from(sa.table("task_search")).where(
        sa.literal_column("task_search").op("MATCH")(expression))
    if floor is not None:
        query = query.where(sa.literal_column("rowid") >= floor)
    return query if ceiling is None else query.where(sa.literal_column("rowid") <= ceiling)


def matches(dialect: str, found: list[str], *, indexed: bool = True) -> sa.ColumnElement[bool]:
    """Every word of `found` begins a token of the task's text. PostgreSQL: not `indexed`, each row's
    tsvector is tested (for a few thousand rows: cheaper than the GIN index's every match)."""
    if dialect == "postgresql":
        query = " & ".join(f"'{word}':*" for word in found)
        column = "tasks.search" if indexed else "coalesce(tasks.search, tasks.search)"
        return sa.literal_column(column).op("@@")(sa.cast(sa.literal(query), TSQUERY))
    return sa.literal_column("tasks.rowid").in_(_hits(_prefixes(found)))


def matches_from(expression: str, floor: int | None = None) -> sa.ColumnElement[bool]:
    """SQLite: matches of this FTS5 query (among the tasks from rowid `floor` on: see `window`)."""
    if floor is None:
        return sa.literal_column("tasks.rowid").in_(_hits(expression))
    # `+`: not a rowid lookup per match then a sort, but the list's own index walked newest first,
    # each task looked up in the (small) set of matches, until the page is full
    return sa.literal_column("+tasks.rowid").in_(_hits(expression, floor))


def window(conditions: list[sa.ColumnElement[bool]], size: int) -> sa.Select[Any]:
    """SQLite: (lowest rowid, how many, oldest created_at) of the `size` newest tasks meeting `conditions`.

    A page of a common word is among the newest few thousand tasks. Rowids grow as tasks are inserted,
    in creation order (but for the order within a batch), so the matches from the window's lowest
    rowid on hold every match in the window and few others, whatever the size of the history."""
    newest = (sa.select(tasks.c.created_at, sa.literal_column("tasks.rowid").label("row"))
              .where(*conditions).order_by(tasks.c.created_at.desc(), tasks.c.id.desc()).limit(size).subquery())
    return sa.select(sa.func.min(newest.c.row), sa.func.count(), sa.func.min(newest.c.created_at))


def rowids(conditions: list[sa.ColumnElement[bool]]) -> sa.Select[Any]:
    """SQLite: the lowest and highest rowid of the tasks meeting `conditions` (a creation time range)."""
    return sa.select(sa.func.min(sa.literal_column("tasks.rowid")), sa.func.max(sa.literal_column("tasks.rowid"))
                     ).select_from(tasks).where(*conditions)


def count_up_to(conditions: list[sa.ColumnElement[bool]], expression: str, cap: int,
                span: tuple[int | None, int | None] = (None, None)) -> sa.Select[Any]:
    """SQLite: matches of this FTS5 query meeting `conditions` (all within the rowids `span`), counted
    up to `cap` while reading the index newest first (no set of every match is built first)."""
    if not conditions:  # every match is a task: the index alone
        return sa.select(sa.func.count()).select_from(_hits(expression).limit(cap).subquery())
    hits = _hits(expression, *span).order_by(sa.literal_column("rowid").desc()).subquery()
    matching = (sa.select(sa.literal_column("1")).select_from(hits.join(
        tasks, sa.literal_column("tasks.rowid") == hits.c.rowid)).where(*conditions).limit(cap).subquery())
    return sa.select(sa.func.count()).select_from(matching)
