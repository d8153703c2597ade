"""Conversations and the usage ledger, in one SQLite database (WAL mode).

A conversation is a notebook (its id is the notebook's path); a turn is one cell (its key is the
cell's id): a re-run replaces that cell's turn and keeps its place, so later cells' turns stay.
Turns keep the order in which their cells first asked. Every answer, in a conversation or not,
adds a row to the ledger: who, which model, tokens, cost, time, outcome.

All database work runs on one thread (one writer, no lock contention on the event loop).
A database that cannot be opened (corrupt, locked, unreadable) is moved aside with a timestamp
and a fresh one is made beside it, with one warning: the server keeps working.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from . import sessions
from .sessions import SessionInfo

log = logging.getLogger(__name__)

T = TypeVar("T")


def conversation_path(path: str) -> str:
    """The one spelling of a notebook's API path: ``./a.ipynb`` and ``x/../a.ipynb`` are
    ``a.ipynb``; ValueError for a path that leaves the root or names no file."""
    normal = posixpath.normpath(path.strip("/") or ".")
    if normal == ".." or normal.startswith("../"):
        raise ValueError("it leaves the server's root folder")
    if normal == ".":
        raise ValueError("it is empty")
    return normal


SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    conversation TEXT NOT NULL,
    cell_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL,
    model TEXT,
    persona TEXT,
    status TEXT NOT NULL,          -- ok | cancelled | error | interrupted
    error TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost_usd REAL,
    updated REAL NOT NULL,
    context TEXT,                  -- the context sent with the prompt, as the provider got it
    PRIMARY KEY (conversation, cell_id)
);
CREATE TABLE IF NOT EXISTS ledger (
    user TEXT NOT NULL,
    at REAL NOT NULL,
    day TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost_usd REAL,
    elapsed_ms INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_user_day ON ledger (user, day);
"""


@dataclass(frozen=True)
class Turn:
    cell_id: str
    prompt: str
    answer: str
    model: str | None
    persona: str | None
    status: str
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    context: str | None = None  # what context went with the prompt (README "Context")

    def public(self) -> dict[str, Any]:
        return asdict(self)


_TURN_COLUMNS = "cell_id, prompt, answer, model, persona, status, error, prompt_tokens, completion_tokens, cost_usd, context"


def totals(turns: list[Turn]) -> dict[str, Any]:
    """What a conversation's current turns used."""
    costs = [t.cost_usd for t in turns if t.cost_usd is not None]
    return {
        "turns": len(turns),
        "prompt_tokens": sum(t.prompt_tokens or 0 for t in turns),
        "completion_tokens": sum(t.completion_tokens or 0 for t in turns),
        "cost_usd": sum(costs) if costs else None,
    }


@dataclass(frozen=True)
class LedgerEntry:
    user: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    elapsed_ms: int
    outcome: str  # the finish reason: stop, length, cancelled, error, ...


def _forget(db: sqlite3.Connection, path: str) -> None:
    """Delete the conversation ``path`` and every one under it, as a folder."""
    prefix = path.rstrip("/") + "/"
    db.execute(
        "DELETE FROM turns WHERE conversation = ? OR substr(conversation, 1, ?) = ?", (path, len(prefix), prefix)
    )


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cellmage-db")
        self._db: sqlite3.Connection | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, timeout=5)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        db.executescript(sessions.SCHEMA)
        db.execute("SELECT count(*) FROM turns").fetchone()  # reads the file: corruption shows here
        columns = {row[1] for row in db.execute("PRAGMA table_info(turns)")}
        if "context" not in columns:  # a database from before context: its turns had none
            db.execute("ALTER TABLE turns ADD COLUMN context TEXT")
        return db

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self._db = self._connect()
            except sqlite3.Error as e:
                aside = self.path.with_name(f"{self.path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
                for suffix in ("", "-wal", "-shm"):
                    source = Path(str(self.path) + suffix)
                    if source.exists():
                        source.rename(Path(str(aside) + suffix))
                log.warning(
                    "cellmage: the conversation database %s could not be used (%s); it was moved to %s "
                    "and a fresh one was started",
                    self.path, e, aside,
                )
                self._db = self._connect()
        return self._db

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def work() -> T:
            db = self._open()
            with db:  # one transaction
                return fn(db)

        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def close(self) -> None:
        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        self._executor.submit(shut).result(timeout=10)
        self._executor.shutdown(wait=True)

    # --- conversations ---------------------------------------------------------------------

    async def turns(self, conversation: str) -> list[Turn]:
        """A conversation's turns, in the order their cells first asked."""

        def read(db: sqlite3.Connection) -> list[Turn]:
            rows = db.execute(
                f"SELECT {_TURN_COLUMNS} FROM turns WHERE conversation = ? ORDER BY position",
                (conversation,),
            ).fetchall()
            return [Turn(*row) for row in rows]

        return await self._run(read)

    async def earlier_turns(self, conversation: str, cell_id: str | None) -> list[Turn]:
        """The turns before ``cell_id``'s own (all of them for a cell that never asked)."""

        def read(db: sqlite3.Connection) -> list[Turn]:
            position = None
            if cell_id is not None:
                row = db.execute(
                    "SELECT position FROM turns WHERE conversation = ? AND cell_id = ?", (conversation, cell_id)
                ).fetchone()
                position = row[0] if row else None
            rows = db.execute(
                f"SELECT {_TURN_COLUMNS} FROM turns WHERE conversation = ? AND position < ? ORDER BY position",
                (conversation, position if position is not None else 1 << 62),
            ).fetchall()
            return [Turn(*row) for row in rows]

        return await self._run(read)

    async def save_turn(self, conversation: str, turn: Turn) -> None:
        """Store ``turn``, replacing that cell's earlier turn in place."""

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO turns (conversation, cell_id, position, prompt, answer, model, persona, status, error, "
                "prompt_tokens, completion_tokens, cost_usd, updated, context) "
                "VALUES (?, ?, (SELECT coalesce(max(position), 0) + 1 FROM turns WHERE conversation = ?), "
                "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (conversation, cell_id) DO UPDATE SET prompt = excluded.prompt, answer = excluded.answer, "
                "model = excluded.model, persona = excluded.persona, status = excluded.status, error = excluded.error, "
                "prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens, "
                "cost_usd = excluded.cost_usd, updated = excluded.updated, context = excluded.context",
                (conversation, turn.cell_id, conversation, turn.prompt, turn.answer, turn.model, turn.persona,
                 turn.status, turn.error, turn.prompt_tokens, turn.completion_tokens, turn.cost_usd, time.time(),
                 turn.context),
            )

        await self._run(write)

    async def clear(self, conversation: str) -> int:
        return await self._run(lambda db: db.execute("DELETE FROM turns WHERE conversation = ?", (conversation,)).rowcount)

    async def delete_turn(self, conversation: str, cell_id: str) -> int:
        return await self._run(
            lambda db: db.execute(
                "DELETE FROM turns WHERE conversation = ? AND cell_id = ?", (conversation, cell_id)
            ).rowcount
        )

    async def rename(self, old: str, new: str) -> None:
        """A notebook (or a folder of notebooks) moved: its conversations follow it.

        A conversation still recorded at the destination (its notebook was deleted behind the
        server's back) is replaced: the moved notebook's turns win, and no turn is left behind.
        """
        if old == new:
            return

        def write(db: sqlite3.Connection) -> None:
            _forget(db, new)
            db.execute("UPDATE turns SET conversation = ? WHERE conversation = ?", (new, old))
            prefix = old.rstrip("/") + "/"
            db.execute(
                "UPDATE turns SET conversation = ? || substr(conversation, ?) WHERE substr(conversation, 1, ?) = ?",
                (new.rstrip("/") + "/", len(prefix) + 1, len(prefix), prefix),
            )

        await self._run(write)

    async def forget(self, path: str) -> None:
        """A notebook (or a folder) was deleted: a new file of that name starts a new conversation."""
        await self._run(lambda db: _forget(db, path))

    # --- saved conversations (store/sessions.py), each person's own -------------------------

    async def save_session(self, owner: str, name: str | None, conversation: str) -> SessionInfo:
        """A new named copy of ``conversation`` (raises sessions.TooManySessions at the bound)."""
        return await self._run(lambda db: sessions.save(db, owner, name, conversation))

    async def replace_session(self, owner: str, session: str, conversation: str) -> SessionInfo | None:
        return await self._run(lambda db: sessions.replace(db, owner, session, conversation))

    async def matching_sessions(self, owner: str, wanted: str) -> list[str]:
        return await self._run(lambda db: sessions.matching(db, owner, wanted))

    async def load_session(self, owner: str, session: str, conversation: str) -> int:
        return await self._run(lambda db: sessions.load(db, owner, session, conversation))

    async def list_sessions(self, owner: str) -> list[SessionInfo]:
        return await self._run(lambda db: sessions.listing(db, owner))

    async def delete_session(self, owner: str, session: str) -> bool:
        return await self._run(lambda db: sessions.delete(db, owner, session))

    # --- ledger ----------------------------------------------------------------------------

    async def record(self, entry: LedgerEntry) -> None:
        now = time.time()

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO ledger (user, at, day, model, prompt_tokens, completion_tokens, cost_usd, elapsed_ms, outcome) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.user, now, time.strftime("%Y-%m-%d", time.gmtime(now)), entry.model, entry.prompt_tokens,
                 entry.completion_tokens, entry.cost_usd, entry.elapsed_ms, entry.outcome),
            )

        await self._run(write)

    async def usage(self, user: str) -> dict[str, Any]:
        """One user's totals by day (UTC) and model, and overall."""

        def read(db: sqlite3.Connection) -> dict[str, Any]:
            rows = db.execute(
                "SELECT day, model, count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost_usd) "
                "FROM ledger WHERE user = ? GROUP BY day, model ORDER BY day, model",
                (user,),
            ).fetchall()
            keys = ("day", "model", "answers", "prompt_tokens", "completion_tokens", "cost_usd")
            by_day = [dict(zip(keys, row)) for row in rows]
            total = {
                "answers": sum(r["answers"] for r in by_day),
                "prompt_tokens": sum(r["prompt_tokens"] or 0 for r in by_day),
                "completion_tokens": sum(r["completion_tokens"] or 0 for r in by_day),
                "cost_usd": sum(r["cost_usd"] or 0 for r in by_day),
            }
            return {"user": user, "by_day": by_day, "total": total}

        return await self._run(read)
