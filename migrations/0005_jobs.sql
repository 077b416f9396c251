-- Daemon: the job queue, the daemon's heartbeat, per-source / per-sink health, and which replies'
-- command lines were read. Append-only: a landed migration is never edited; add 0006_... instead.

-- One unit of work: check a series version and report it. dedup_key makes enqueueing idempotent:
-- `review:<series>:<signature of its messages>` (a series that gains a patch is a new job),
-- `rerun:<message row of the mail that asked>`. A running job holds a lease: the owner (host:pid:nonce)
-- renews lease_expires_at while it works; a job whose owner is gone (pid dead on this host, or the
-- lease expired) is put back to 'queued' and taken again. No foreign key to series: a rebuild may
-- regroup a series, and the queue's record of what was done must outlive that.
CREATE TABLE jobs (
  id                INTEGER PRIMARY KEY,
  kind              TEXT NOT NULL CHECK (kind IN ('review', 'rerun')),
  series_id         INTEGER NOT NULL,
  dedup_key         TEXT NOT NULL UNIQUE,
  reason            TEXT NOT NULL,
  state             TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
  outcome           TEXT CHECK (outcome IN ('reported', 'superseded', 'series-gone')),
  attempts          INTEGER NOT NULL DEFAULT 0,
  not_before        TEXT NOT NULL,
  lease_owner       TEXT,
  lease_pid         INTEGER,
  lease_host        TEXT,
  lease_expires_at  TEXT,
  -- Set at the first claim and kept: a check of this series with this trigger started after it was
  -- made by this job, so a retaken job finds the check a killed attempt already recorded.
  first_claimed_at  TEXT,
  check_id          INTEGER,
  last_error        TEXT,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  finished_at       TEXT,
  CHECK ((state = 'running') = (lease_owner IS NOT NULL)),
  CHECK ((state = 'done') = (outcome IS NOT NULL))
);
CREATE INDEX jobs_due ON jobs(state, not_before, id);
CREATE INDEX jobs_series ON jobs(series_id, state);

-- One row per daemon process: the heartbeat `status` reads, and the record of how it ended.
CREATE TABLE daemon_runs (
  id                INTEGER PRIMARY KEY,
  owner             TEXT NOT NULL UNIQUE,
  pid               INTEGER NOT NULL,
  host              TEXT NOT NULL,
  beat_interval_ms  INTEGER NOT NULL,
  started_at        TEXT NOT NULL,
  heartbeat_at      TEXT NOT NULL,
  stopped_at        TEXT,
  stop_reason       TEXT
);

-- Last success and last error of each mail source and each sink, as the daemon saw them.
CREATE TABLE daemon_health (
  kind            TEXT NOT NULL CHECK (kind IN ('source', 'sink')),
  name            TEXT NOT NULL,
  last_ok_at      TEXT,
  last_ingest_at  TEXT,
  last_error      TEXT,
  last_error_at   TEXT,
  updated_at      TEXT NOT NULL,
  PRIMARY KEY (kind, name)
);

-- Replies read for `vfio-review:` command lines (once each), and what came of them.
CREATE TABLE command_mail (
  message_id    INTEGER PRIMARY KEY,
  from_addr     TEXT,
  allowed       INTEGER NOT NULL CHECK (allowed IN (0, 1)),
  outcome_json  TEXT NOT NULL,
  job_id        INTEGER,
  read_at       TEXT NOT NULL
);

-- Small named counters of the daemon (the highest message row read for commands).
CREATE TABLE daemon_cursors (
  name        TEXT PRIMARY KEY,
  value       INTEGER NOT NULL,
  updated_at  TEXT NOT NULL
);
