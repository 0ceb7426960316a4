"""A crash-safe, append-only trial store on SQLite.

Every trial of a run is one row of ``trials`` (its decisions, spec, status, reward, metrics,
error, timings, strategy meta, and timestamps), and every state change (pending -> running ->
done / failed) is one more row of ``events``. Each change is its own transaction in WAL mode
with ``synchronous=FULL``: once a call returns, the change survives a crash of the process (or
of the machine). A finished trial is final: the store refuses to change it again, so a resumed
run can never overwrite a reward or train a finished child twice.

The store also records which finished trials the strategy checkpoint has seen (``told_gen``,
the checkpoint generation that includes the trial), so a resumed run re-tells exactly the
trials the last checkpoint missed (see `nascell.search.rundir.run_dir`).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from typing import Any, Dict, Iterable, List, Optional

from nascell import _io
from nascell.search.core.trial import Trial, TrialStatus

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS info (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    decisions TEXT NOT NULL,
    spec TEXT,
    status TEXT NOT NULL,
    reward REAL,
    metrics TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    timings TEXT NOT NULL DEFAULT '{}',
    meta TEXT NOT NULL DEFAULT '{}',
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    told_gen INTEGER
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    trial_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    time REAL NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS trials_status ON trials (status);
"""


class StoreError(RuntimeError):
    """The trial store is unreadable or was asked to do something that would lose data."""


def spec_to_json(spec: Any) -> Optional[str]:
    """A spec as JSON text: its ``to_dict()`` when it has one, else the value itself."""
    if spec is None:
        return None
    if hasattr(spec, "to_dict"):
        return json.dumps(spec.to_dict(), sort_keys=True)
    try:
        return json.dumps(spec, sort_keys=True)
    except TypeError:
        return json.dumps(repr(spec))


def spec_from_stored(text: Optional[str]) -> Any:
    """The inverse of `spec_to_json`: a registered spec kind comes back as its spec object."""
    if text is None:
        return None
    data = json.loads(text)
    if isinstance(data, dict) and "kind" in data:
        try:
            from nascell.spec import spec_from_dict
            return spec_from_dict(data)
        except Exception:  # an unknown kind stays plain data
            return data
    return data


def _dumps(obj: Any) -> str:
    # numpy scalars and arrays, sets: the usual suspects in metrics and strategy meta.
    return json.dumps(obj, sort_keys=True, default=_io.json_default)


class TrialStore:
    """One run's trials in ``trials.sqlite``. Use it from one process at a time.

    Args:
      path: the database file; created (with its schema) if it does not exist.
      readonly: open without writing anything (for inspection while a search runs).
    """

    def __init__(self, path: str, readonly: bool = False):
        self.path = path
        self.readonly = readonly
        existed = os.path.exists(path)
        if readonly and not existed:
            raise StoreError(f"{path} does not exist; is this a run directory?")
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0,
                                           isolation_level=None)
            else:
                self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(_SCHEMA)
                self._set_info_default("schema_version", str(SCHEMA_VERSION))
            self._db.row_factory = sqlite3.Row
            self._check()
        except sqlite3.DatabaseError as e:
            raise StoreError(
                f"{path} is not a readable trial store ({e}). Nothing was changed. Move the "
                "run directory aside and start a new search with another --run_dir, or "
                "restore trials.sqlite from a backup.") from None

    # -- housekeeping ----------------------------------------------------------------------

    def _check(self) -> None:
        row = self._db.execute("PRAGMA quick_check").fetchone()
        if row is None or row[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {row[0] if row else '?'}")
        version = self.info("schema_version")
        if version is not None and int(version) > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this nascell ({SCHEMA_VERSION})")

    def _set_info_default(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO info (key, value) VALUES (?, ?)", (key, value))

    def info(self, key: str) -> Optional[str]:
        row = self._db.execute("SELECT value FROM info WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_info(self, key: str, value: str) -> None:
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO info (key, value) VALUES (?, ?)",
                             (key, value))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "TrialStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _transaction(self):
        if self.readonly:
            raise StoreError(f"{self.path} was opened read-only")
        return _Transaction(self._db)

    # -- writing ---------------------------------------------------------------------------

    def add(self, trials: Iterable[Trial]) -> None:
        """Record newly asked trials as pending (one transaction for the whole batch)."""
        trials = list(trials)
        now = time.time()
        with self._transaction():
            for t in trials:
                try:
                    self._db.execute(
                        "INSERT INTO trials (id, decisions, spec, status, meta, created) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (int(t.trial_id), _dumps(t.decisions), spec_to_json(t.spec),
                         TrialStatus.PENDING.value, _dumps(t.meta), now))
                except sqlite3.IntegrityError:
                    raise StoreError(f"trial {t.trial_id} is already in {self.path}; a "
                                     "strategy must never reuse a trial id") from None
                self._event(t.trial_id, TrialStatus.PENDING, now)
        for t in trials:
            t.status = TrialStatus.PENDING

    def mark_running(self, trial_id: int, detail: Optional[str] = None) -> None:
        """A trial was handed to an executor (again, after a crash: `attempts` counts)."""
        now = time.time()
        # Not fsynced on its own (WAL, synchronous=NORMAL: safe against a crash of the
        # process, not of the machine): pending and running trials are resumed alike, and the
        # next finish() commit makes it durable anyway. Saves one fsync per trial.
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._mark_running(trial_id, now, detail)
        finally:
            self._db.execute("PRAGMA synchronous=FULL")

    def _mark_running(self, trial_id: int, now: float, detail: Optional[str]) -> None:
        with self._transaction():
            cur = self._db.execute(
                "UPDATE trials SET status = ?, started = ?, attempts = attempts + 1 "
                "WHERE id = ? AND status IN (?, ?)",
                (TrialStatus.RUNNING.value, now, int(trial_id), TrialStatus.PENDING.value,
                 TrialStatus.RUNNING.value))
            if cur.rowcount != 1:
                raise StoreError(f"trial {trial_id} is unknown or already finished; it cannot "
                                 "run again")
            self._event(trial_id, TrialStatus.RUNNING, now, detail)

    def finish(self, trial: Trial) -> None:
        """Record a trial's outcome (DONE or FAILED). A finished trial can never change again."""
        if trial.status not in (TrialStatus.DONE, TrialStatus.FAILED):
            raise ValueError(f"Argument `trial` of finish() must be DONE or FAILED. "
                             f"Received: trial.status={trial.status}")
        reward = trial.reward
        if reward is not None and not math.isfinite(reward):
            raise ValueError(f"trial {trial.trial_id}: reward {reward} is not finite")
        now = time.time()
        with self._transaction():
            cur = self._db.execute(
                "UPDATE trials SET status = ?, reward = ?, metrics = ?, error = ?, timings = ?, "
                "meta = ?, finished = ? WHERE id = ? AND status NOT IN (?, ?)",
                (trial.status.value, reward, _dumps(trial.metrics), trial.error,
                 _dumps(trial.timings), _dumps(trial.meta), now, int(trial.trial_id),
                 TrialStatus.DONE.value, TrialStatus.FAILED.value))
            if cur.rowcount != 1:
                raise StoreError(f"trial {trial.trial_id} is unknown or already finished; a "
                                 "finished trial is never recorded twice")
            self._event(trial.trial_id, trial.status, now, trial.error)

    def mark_told(self, trial_ids: Iterable[int], generation: int) -> None:
        """The strategy checkpoint `generation` includes these trials' rewards."""
        with self._transaction():
            self._db.executemany("UPDATE trials SET told_gen = ? WHERE id = ?",
                                 [(int(generation), int(i)) for i in trial_ids])
            self._db.execute("INSERT OR REPLACE INTO info (key, value) VALUES (?, ?)",
                             ("strategy_generation", str(int(generation))))

    def _event(self, trial_id: int, status: TrialStatus, now: float,
               detail: Optional[str] = None) -> None:
        self._db.execute("INSERT INTO events (trial_id, status, time, detail) VALUES (?, ?, ?, ?)",
                         (int(trial_id), status.value, now, detail))

    # -- reading ---------------------------------------------------------------------------

    def get(self, trial_id: int) -> Optional[Trial]:
        row = self._db.execute("SELECT * FROM trials WHERE id = ?", (int(trial_id),)).fetchone()
        return None if row is None else _row_to_trial(row)

    def trials(self, status: Optional[Iterable[TrialStatus]] = None,
               order: str = "id") -> List[Trial]:
        """Trials (all, or those with one of the given statuses), by id or by finish time."""
        sql = "SELECT * FROM trials"
        args: List[Any] = []
        if status is not None:
            values = [TrialStatus(s).value for s in status]
            sql += f" WHERE status IN ({','.join('?' * len(values))})"
            args = values
        sql += " ORDER BY finished, id" if order == "finished" else " ORDER BY id"
        return [_row_to_trial(r) for r in self._db.execute(sql, args)]

    def finished(self) -> List[Trial]:
        return self.trials([TrialStatus.DONE, TrialStatus.FAILED], order="finished")

    def unfinished(self) -> List[Trial]:
        return self.trials([TrialStatus.PENDING, TrialStatus.RUNNING])

    def untold(self, after_generation: Optional[int] = None) -> List[Trial]:
        """Finished trials that strategy checkpoint `after_generation` (default: the current
        one) has not seen, by finish time."""
        if after_generation is None:
            after_generation = int(self.info("strategy_generation") or 0)
        rows = self._db.execute(
            "SELECT * FROM trials WHERE status IN (?, ?) AND (told_gen IS NULL OR told_gen > ?) "
            "ORDER BY finished, id",
            (TrialStatus.DONE.value, TrialStatus.FAILED.value, int(after_generation)))
        return [_row_to_trial(r) for r in rows]

    def counts(self) -> Dict[str, int]:
        out = {s.value: 0 for s in TrialStatus}
        for status, n in self._db.execute("SELECT status, COUNT(*) FROM trials GROUP BY status"):
            out[status] = n
        return out

    def max_trial_id(self) -> int:
        """The largest trial id recorded, or -1 for an empty store."""
        row = self._db.execute("SELECT MAX(id) FROM trials").fetchone()
        return -1 if row[0] is None else int(row[0])

    def best(self, k: int = 1, phase: Optional[str] = None) -> List[Trial]:
        """The `k` done trials with the highest reward (ties: the earlier trial first); with
        ``phase``, only trials whose ``meta["phase"]`` is ``phase``."""
        where, args = "status = ?", [TrialStatus.DONE.value]
        if phase is not None:  # SQLite's JSON functions: one indexed-free scan, no decoding
            where += " AND json_extract(meta, '$.phase') = ?"
            args.append(phase)
        rows = self._db.execute(f"SELECT * FROM trials WHERE {where} ORDER BY reward DESC, id "
                                "LIMIT ?", (*args, int(k)))
        return [_row_to_trial(r) for r in rows]

    def events(self, trial_id: Optional[int] = None) -> List[Dict[str, Any]]:
        sql, args = "SELECT * FROM events", ()
        if trial_id is not None:
            sql, args = sql + " WHERE trial_id = ?", (int(trial_id),)
        return [dict(r) for r in self._db.execute(sql + " ORDER BY seq", args)]

    def attempts(self, trial_id: int) -> int:
        row = self._db.execute("SELECT attempts FROM trials WHERE id = ?",
                               (int(trial_id),)).fetchone()
        return 0 if row is None else int(row[0])

    def row(self, trial_id: int) -> Optional[Dict[str, Any]]:
        """The raw row (timestamps, attempts, told_gen included)."""
        r = self._db.execute("SELECT * FROM trials WHERE id = ?", (int(trial_id),)).fetchone()
        return None if r is None else dict(r)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")


def _row_to_trial(row: sqlite3.Row) -> Trial:
    status = TrialStatus(row["status"])
    return Trial(
        trial_id=int(row["id"]),
        decisions=json.loads(row["decisions"]),
        spec=spec_from_stored(row["spec"]),
        status=status,
        reward=row["reward"],
        metrics=json.loads(row["metrics"]),
        error=row["error"],
        meta=json.loads(row["meta"]),
        timings=json.loads(row["timings"]),
    )
