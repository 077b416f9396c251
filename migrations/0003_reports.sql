-- Reporter: concerns tracked across the versions of a series, and the outbox of replies.
-- Append-only: a landed migration is never edited; add 0004_... instead.

-- One concern per (lineage, fingerprint): the same finding raised again on a later version is the same
-- concern. public_id is what replies show and what `vfio-review: dismiss <id>` names; it is derived from
-- the lineage key and the fingerprint, so it survives a rebuild of the store.
-- No foreign keys to lineages or series here: a series rebuild deletes lineages that merged into
-- another, and a cascade would take dismissals with it. Concerns of a vanished lineage are re-homed
-- to the lineage their series now belong to (src/report/concerns.ts).
CREATE TABLE concerns (
  id                  INTEGER PRIMARY KEY,
  public_id           TEXT NOT NULL UNIQUE,
  lineage_id          INTEGER NOT NULL,
  fingerprint         TEXT NOT NULL,
  rule                TEXT NOT NULL,
  category            TEXT NOT NULL,
  file                TEXT NOT NULL,
  function            TEXT,
  first_series_id     INTEGER NOT NULL,
  last_seen_series_id INTEGER,
  resolved_series_id  INTEGER,
  state               TEXT NOT NULL CHECK (state IN ('new', 'open', 'resolved', 'dismissed')),
  dismissed_by        TEXT,
  dismissed_why       TEXT,
  dismissed_via       TEXT CHECK (dismissed_via IN ('email', 'dashboard', 'github', 'cli')),
  dismissed_at        TEXT,
  created_at          TEXT NOT NULL,
  updated_at          TEXT NOT NULL,
  UNIQUE (lineage_id, fingerprint),
  CHECK ((state = 'dismissed') = (dismissed_by IS NOT NULL AND dismissed_why IS NOT NULL))
);
CREATE INDEX concerns_lineage ON concerns(lineage_id, state);

-- Which checks the concern tracker has taken in. A concern is only resolved by a tracked check that
-- reviewed the whole series (reviewable = 1: every patch present, rules ran).
CREATE TABLE concern_checks (
  check_id    INTEGER PRIMARY KEY REFERENCES checks(id) ON DELETE CASCADE,
  series_id   INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
  lineage_id  INTEGER NOT NULL,
  reviewable  INTEGER NOT NULL CHECK (reviewable IN (0, 1)),
  tracked_at  TEXT NOT NULL
);
CREATE INDEX concern_checks_lineage ON concern_checks(lineage_id, series_id, check_id);

-- One row per concern per check that found it; the finding as the check recorded it.
CREATE TABLE concern_sightings (
  concern_id  INTEGER NOT NULL REFERENCES concerns(id) ON DELETE CASCADE,
  series_id   INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
  check_id    INTEGER NOT NULL REFERENCES checks(id) ON DELETE CASCADE,
  finding     TEXT NOT NULL,
  PRIMARY KEY (concern_id, check_id)
);
CREATE INDEX concern_sightings_check ON concern_sightings(check_id);

-- The outbox: one row per reply decided. The row is written in the same transaction as the decision,
-- delivered afterwards and marked sent only once the server accepted it. idem_key is
-- hash(series, version, sink, kind, patch Message-ID) (plus the findings digest for 'rerun'), so a
-- second decision for the same reply is a no-op. series_id is not a cascading key: the record of
-- what was sent outlives a regrouped series.
CREATE TABLE outbox (
  id               INTEGER PRIMARY KEY,
  idem_key         TEXT NOT NULL UNIQUE,
  series_id        INTEGER NOT NULL,
  lineage_id       INTEGER,
  check_id         INTEGER,
  version          INTEGER NOT NULL,
  sink             TEXT NOT NULL CHECK (sink IN ('stdout', 'email', 'drafts', 'github')),
  kind             TEXT NOT NULL CHECK (kind IN ('review', 'apply-failed', 'follow-up', 'rerun', 'clean')),
  target_msgid     TEXT NOT NULL,
  list_id          TEXT,
  message_id       TEXT NOT NULL UNIQUE,
  subject          TEXT NOT NULL,
  from_addr        TEXT NOT NULL,
  to_json          TEXT NOT NULL,
  cc_json          TEXT NOT NULL,
  in_reply_to      TEXT NOT NULL,
  references_json  TEXT NOT NULL,
  headers_json     TEXT NOT NULL DEFAULT '{}',
  body             TEXT NOT NULL,
  meta_json        TEXT NOT NULL DEFAULT '{}',
  findings_digest  TEXT NOT NULL,
  revision         INTEGER NOT NULL DEFAULT 1,
  state            TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_at          TEXT NOT NULL,
  last_attempt_at  TEXT,
  last_error       TEXT,
  remote_id        TEXT,
  decided_at       TEXT NOT NULL,
  sent_at          TEXT,
  updated_at       TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox(sink, state, next_at);
CREATE INDEX outbox_series ON outbox(series_id, sink, kind);
CREATE INDEX outbox_rate ON outbox(list_id, sink, decided_at);
