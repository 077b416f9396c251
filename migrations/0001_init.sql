-- vfio-review initial schema: raw mail, parsed messages, threads, series.
-- Append-only: a landed migration is never edited; add 0002_... instead.

-- Every distinct byte sequence ever received, stored before it is parsed.
CREATE TABLE raw_messages (
  id          INTEGER PRIMARY KEY,
  sha256      TEXT NOT NULL UNIQUE,
  bytes       BLOB NOT NULL,
  size        INTEGER NOT NULL,
  first_seen  TEXT NOT NULL
);

-- A place mail comes from: an mbox file, a Maildir, an IMAP mailbox.
CREATE TABLE sources (
  id    INTEGER PRIMARY KEY,
  kind  TEXT NOT NULL CHECK (kind IN ('mbox', 'maildir', 'imap', 'manual')),
  name  TEXT NOT NULL,
  UNIQUE (kind, name)
);

-- One logical message. ident is the Message-ID when it is usable and not reused for
-- other content, otherwise a key derived from it or from the raw hash.
CREATE TABLE messages (
  id              INTEGER PRIMARY KEY,
  ident           TEXT NOT NULL UNIQUE,
  raw_id          INTEGER NOT NULL REFERENCES raw_messages(id),
  message_id      TEXT,
  msgid_state     TEXT NOT NULL CHECK (msgid_state IN ('stated', 'missing', 'reused')),
  parse_state     TEXT NOT NULL CHECK (parse_state IN ('pending', 'parsed', 'failed')),
  parse_error     TEXT,
  subject         TEXT,
  from_name       TEXT,
  from_addr       TEXT,
  reply_to_addr   TEXT,
  date_unix       INTEGER,
  in_reply_to     TEXT,
  refs            TEXT NOT NULL DEFAULT '[]',      -- JSON array of Message-IDs, oldest first
  list_ids        TEXT NOT NULL DEFAULT '[]',      -- JSON array of List-Id values seen
  -- subject grammar (see src/mail/subject.ts); *_stated says whether the value was written
  kind            TEXT NOT NULL DEFAULT 'other'
                  CHECK (kind IN ('patch', 'cover', 'reply', 'pull', 'other')),
  title           TEXT,
  prefixes        TEXT NOT NULL DEFAULT '[]',
  version         INTEGER,
  version_stated  INTEGER NOT NULL DEFAULT 0 CHECK (version_stated IN (0, 1)),
  counter         INTEGER,
  total           INTEGER,
  counter_stated  INTEGER NOT NULL DEFAULT 0 CHECK (counter_stated IN (0, 1)),
  rfc             INTEGER NOT NULL DEFAULT 0 CHECK (rfc IN (0, 1)),
  resend          INTEGER NOT NULL DEFAULT 0 CHECK (resend IN (0, 1)),
  -- body facts
  has_diff        INTEGER NOT NULL DEFAULT 0 CHECK (has_diff IN (0, 1)),
  diff            TEXT,
  commit_msg      TEXT,
  touched_paths   TEXT NOT NULL DEFAULT '[]',
  base_commit     TEXT,
  change_id       TEXT,
  prereq_ids      TEXT NOT NULL DEFAULT '[]',
  based_on        TEXT NOT NULL DEFAULT '[]',
  no_process      INTEGER NOT NULL DEFAULT 0 CHECK (no_process IN (0, 1)),
  body_text       TEXT,                            -- decoded text of covers and replies (trailers, show)
  author_name     TEXT,                            -- in-body From: of a patch, when present
  author_addr     TEXT,
  ingested_at     TEXT NOT NULL
);
CREATE INDEX messages_message_id ON messages(message_id);
CREATE INDEX messages_raw ON messages(raw_id);
CREATE INDEX messages_kind ON messages(kind);

-- Every copy of a message and where it came from (list, mailbox, file offset, UID).
CREATE TABLE message_sources (
  message_id  INTEGER NOT NULL REFERENCES messages(id),
  source_id   INTEGER NOT NULL REFERENCES sources(id),
  raw_id      INTEGER NOT NULL REFERENCES raw_messages(id),
  locator     TEXT NOT NULL,
  list_id     TEXT,
  seen_at     TEXT NOT NULL,
  PRIMARY KEY (message_id, source_id, locator)
);

-- IMAP cursor, as public-inbox keeps it: (mailbox, UIDVALIDITY, last UID).
CREATE TABLE imap_cursors (
  source_id    INTEGER NOT NULL REFERENCES sources(id),
  mailbox      TEXT NOT NULL,
  uidvalidity  TEXT NOT NULL,
  last_uid     INTEGER NOT NULL,
  updated_at   TEXT NOT NULL,
  PRIMARY KEY (source_id, mailbox)
);

-- Thread forest over Message-IDs; ghost nodes stand for parents that never arrived.
CREATE TABLE thread_nodes (
  msgid      TEXT PRIMARY KEY,
  parent     TEXT,
  root       TEXT NOT NULL,
  ghost      INTEGER NOT NULL CHECK (ghost IN (0, 1))
);
CREATE INDEX thread_nodes_root ON thread_nodes(root);

-- Versions of one series linked together.
CREATE TABLE lineages (
  id     INTEGER PRIMARY KEY,
  key    TEXT NOT NULL UNIQUE,
  title  TEXT NOT NULL
);

-- One series version (as b4 understands it). key is stable across rebuilds.
CREATE TABLE series (
  id              INTEGER PRIMARY KEY,
  key             TEXT NOT NULL UNIQUE,
  lineage_id      INTEGER REFERENCES lineages(id),
  title           TEXT NOT NULL,
  subject         TEXT NOT NULL,
  author_addr     TEXT,
  author_name     TEXT,
  version         INTEGER NOT NULL,
  version_stated  INTEGER NOT NULL CHECK (version_stated IN (0, 1)),
  total           INTEGER NOT NULL,
  rfc             INTEGER NOT NULL CHECK (rfc IN (0, 1)),
  resend          INTEGER NOT NULL CHECK (resend IN (0, 1)),
  cover_msg       INTEGER REFERENCES messages(id),
  complete        INTEGER NOT NULL CHECK (complete IN (0, 1)),
  missing         TEXT NOT NULL DEFAULT '[]',
  threading       TEXT NOT NULL CHECK (threading IN ('threaded', 'unthreaded', 'single')),
  base_commit     TEXT,
  change_id       TEXT,
  prereq_ids      TEXT NOT NULL DEFAULT '[]',
  based_on        TEXT NOT NULL DEFAULT '[]',
  relevant        INTEGER NOT NULL CHECK (relevant IN (0, 1)),
  relevant_why    TEXT,
  first_date      INTEGER,
  last_date       INTEGER,
  updated_at      TEXT NOT NULL
);
CREATE INDEX series_lineage ON series(lineage_id);

CREATE TABLE series_patches (
  series_id   INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
  counter     INTEGER NOT NULL,
  message_id  INTEGER NOT NULL REFERENCES messages(id),
  PRIMARY KEY (series_id, counter)
);
CREATE INDEX series_patches_message ON series_patches(message_id);

-- Trailers, attributed to the exact series version and patch they were given on.
CREATE TABLE trailers (
  id           INTEGER PRIMARY KEY,
  series_id    INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
  counter      INTEGER NOT NULL,                   -- 0: given on the cover, for the whole series
  source_msg   INTEGER NOT NULL REFERENCES messages(id),
  name         TEXT NOT NULL CHECK (name IN ('Acked-by', 'Reviewed-by', 'Tested-by', 'Reported-by',
                                             'Suggested-by', 'Fixes', 'Cc', 'Signed-off-by',
                                             'Co-developed-by', 'Link', 'Closes')),
  value        TEXT NOT NULL,
  origin       TEXT NOT NULL CHECK (origin IN ('patch', 'reply')),
  UNIQUE (series_id, counter, source_msg, name, value)
);
