-- Maintainer commands read from GitHub: `/rerun` and `/dismiss <concern-id> <reason>` comments on a
-- tracking issue, and a dismissal label added to it (src/report/github-commands.ts).
-- Append-only: a landed migration is never edited.

-- Where the last poll stopped, per repository. Comments are listed with since= (GitHub filters on
-- updated_at, second resolution) and then cut at last_comment_id (ids grow): a comment is looked at
-- once, when it first appears. Issue events have no since=; they are listed newest first down to
-- last_event_id. NULL = not started: the first poll only places the cursor at the newest item.
CREATE TABLE github_command_cursors (
  repo             TEXT PRIMARY KEY,
  since            TEXT,
  last_comment_id  INTEGER,
  last_event_id    INTEGER,
  updated_at       TEXT NOT NULL
);

-- One row per comment (or label event) that carried a command from an allowed user, written before
-- anything is done about it. Dismissals are applied in the transaction that writes the row; a rerun
-- is handed to the caller after it (state 'recorded' until it returns). The acknowledgement is posted
-- once: ack_attempts is counted and committed before each POST, and after an unfinished attempt the
-- issue's comments are searched for the hidden marker `<!-- vfio-review:ack:{source}:{source_id} -->`
-- before posting again.
CREATE TABLE github_commands (
  id               INTEGER PRIMARY KEY,
  repo             TEXT NOT NULL,
  source           TEXT NOT NULL CHECK (source IN ('comment', 'label')),
  source_id        INTEGER NOT NULL,
  issue_number     INTEGER NOT NULL,
  lineage_id       INTEGER,
  author           TEXT NOT NULL,
  url              TEXT,
  commands_json    TEXT NOT NULL,
  errors_json      TEXT NOT NULL DEFAULT '[]',
  outcome_json     TEXT,
  state            TEXT NOT NULL CHECK (state IN ('recorded', 'applied', 'acked', 'ack-failed')),
  ack_body         TEXT,
  ack_attempts     INTEGER NOT NULL DEFAULT 0,
  ack_comment_id   INTEGER,
  ack_url          TEXT,
  last_error       TEXT,
  received_at      TEXT NOT NULL,
  applied_at       TEXT,
  acked_at         TEXT,
  updated_at       TEXT NOT NULL,
  UNIQUE (repo, source, source_id),
  CHECK (state = 'recorded' OR (outcome_json IS NOT NULL AND ack_body IS NOT NULL))
);
CREATE INDEX github_commands_pending ON github_commands(repo, state);
