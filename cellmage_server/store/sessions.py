"""Saved conversations ("sessions", as CellMage calls them): a person's named copies of a
notebook's conversation, in the same database as the conversations, each person's apart.

A copy is made and loaded inside SQLite (``INSERT … SELECT``), so no conversation passes through
the server's memory however long it is. The functions here run on the store's one database
thread, each inside the transaction ``Store._run`` opens.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    owner TEXT NOT NULL,
    id TEXT NOT NULL,
    source TEXT NOT NULL,          -- the notebook it was saved from
    saved REAL NOT NULL,
    PRIMARY KEY (owner, id)
);
CREATE TABLE IF NOT EXISTS session_turns (
    owner TEXT NOT NULL,
    session TEXT NOT NULL,
    position INTEGER NOT NULL,
    cell_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL,
    model TEXT,
    persona TEXT,
    status TEXT NOT NULL,
    error TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost_usd REAL,
    PRIMARY KEY (owner, session, position)
);
"""

# Saved conversations per person: enough for a career of notebooks, and a bound on the disk one
# kernel can fill by saving in a loop.
MAX_SESSIONS = 500

_COPIED = "cell_id, prompt, answer, model, persona, status, error, prompt_tokens, completion_tokens, cost_usd"


class TooManySessions(Exception):
    """The person has :data:`MAX_SESSIONS` saved conversations already."""


@dataclass(frozen=True)
class SessionInfo:
    id: str
    source: str
    saved: float
    turns: int

    def public(self) -> dict[str, object]:
        return {"id": self.id, "source": self.source, "saved": self.saved, "turns": self.turns}


def stamped(name: str, now: float) -> str:
    """``name`` and the time, as CellMage names a saved conversation: ``name_20250507_123456``."""
    return f"{name}_{time.strftime('%Y%m%d_%H%M%S', time.localtime(now))}"


def name_from(prompt: str) -> str:
    """A name from the first words of a prompt (``--save`` without a name), in the id's shape."""
    words = re.findall(r"[A-Za-z0-9]+", prompt)[:5]
    return "_".join(words).lower()[:40] or "conversation"


def _copy_to_session(db: sqlite3.Connection, owner: str, session: str, conversation: str) -> int:
    db.execute("DELETE FROM session_turns WHERE owner = ? AND session = ?", (owner, session))
    return db.execute(
        f"INSERT INTO session_turns (owner, session, position, {_COPIED}) "
        f"SELECT ?, ?, position, {_COPIED} FROM turns WHERE conversation = ?",
        (owner, session, conversation),
    ).rowcount


def save(db: sqlite3.Connection, owner: str, name: str | None, conversation: str) -> SessionInfo:
    """A new saved copy of ``conversation``, named ``name`` and the time (or after its first
    prompt); a second save in the same second gets ``_2``, ``_3``, …"""
    count = db.execute("SELECT count(*) FROM sessions WHERE owner = ?", (owner,)).fetchone()[0]
    if count >= MAX_SESSIONS:
        raise TooManySessions()
    if name is None:
        first = db.execute(
            "SELECT prompt FROM turns WHERE conversation = ? ORDER BY position LIMIT 1", (conversation,)
        ).fetchone()
        name = name_from(first[0] if first else "")
    now = time.time()
    base = stamped(name, now)
    taken = {row[0] for row in db.execute("SELECT id FROM sessions WHERE owner = ? AND id LIKE ? ESCAPE '\\'",
                                          (owner, base.replace("_", "\\_") + "%"))}
    session, n = base, 1
    while session in taken:  # at most one more than the saves of this second
        n += 1
        session = f"{base}_{n}"
    db.execute("INSERT INTO sessions (owner, id, source, saved) VALUES (?, ?, ?, ?)", (owner, session, conversation, now))
    turns = _copy_to_session(db, owner, session, conversation)
    return SessionInfo(session, conversation, now, turns)


def replace(db: sqlite3.Connection, owner: str, session: str, conversation: str) -> SessionInfo | None:
    """Save ``conversation`` over the saved copy ``session`` (auto-save); None if there is none."""
    now = time.time()
    updated = db.execute(
        "UPDATE sessions SET source = ?, saved = ? WHERE owner = ? AND id = ?", (conversation, now, owner, session)
    ).rowcount
    if not updated:
        return None
    return SessionInfo(session, conversation, now, _copy_to_session(db, owner, session, conversation))


def matching(db: sqlite3.Connection, owner: str, wanted: str) -> list[str]:
    """The ids of the person's saved copies that ``wanted`` names: itself, else every id it begins."""
    if db.execute("SELECT 1 FROM sessions WHERE owner = ? AND id = ?", (owner, wanted)).fetchone():
        return [wanted]
    rows = db.execute(
        "SELECT id FROM sessions WHERE owner = ? AND substr(id, 1, ?) = ? ORDER BY id", (owner, len(wanted), wanted)
    )
    return [row[0] for row in rows]


def load(db: sqlite3.Connection, owner: str, session: str, conversation: str) -> int:
    """Make ``conversation`` the saved copy's turns (its own are forgotten); how many."""
    db.execute("DELETE FROM turns WHERE conversation = ?", (conversation,))
    return db.execute(
        f"INSERT INTO turns (conversation, position, {_COPIED}, updated) "
        f"SELECT ?, position, {_COPIED}, ? FROM session_turns WHERE owner = ? AND session = ? ORDER BY position",
        (conversation, time.time(), owner, session),
    ).rowcount


def listing(db: sqlite3.Connection, owner: str) -> list[SessionInfo]:
    rows = db.execute(
        "SELECT s.id, s.source, s.saved, (SELECT count(*) FROM session_turns t WHERE t.owner = s.owner "
        "AND t.session = s.id) FROM sessions s WHERE s.owner = ? ORDER BY s.saved, s.id",
        (owner,),
    )
    return [SessionInfo(*row) for row in rows]


def delete(db: sqlite3.Connection, owner: str, session: str) -> bool:
    db.execute("DELETE FROM session_turns WHERE owner = ? AND session = ?", (owner, session))
    return db.execute("DELETE FROM sessions WHERE owner = ? AND id = ?", (owner, session)).rowcount > 0
