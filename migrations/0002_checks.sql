-- One row per check of a series version: where it applied (or why not), and what was found.
CREATE TABLE checks (
  id             INTEGER PRIMARY KEY,
  series_id      INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
  trigger        TEXT NOT NULL CHECK (trigger IN ('check', 'rerun', 'daemon')),
  tree           TEXT NOT NULL,
  status         TEXT NOT NULL CHECK (status IN ('applied', 'applied-with-fuzz', 'already-applied', 'partial',
                                                  'not-applied', 'rejected', 'error')),
  base_ref       TEXT,
  base_commit    TEXT,
  head_commit    TEXT,
  label          TEXT NOT NULL,
  complete       INTEGER NOT NULL CHECK (complete IN (0, 1)),
  apply_json     TEXT NOT NULL,                  -- the whole ApplyResult (attempts, per-patch results, hunks)
  findings_json  TEXT NOT NULL DEFAULT '[]',
  error          TEXT,
  started_at     TEXT NOT NULL,
  finished_at    TEXT NOT NULL
);
CREATE INDEX checks_series ON checks(series_id, id);
