-- GitHub sink bookkeeping: which tracking issue a lineage has, and which comment a reply became.
-- Losing these costs one listing on GitHub (the markers in issues and comments are the truth).
CREATE TABLE github_issues (
  repo          TEXT NOT NULL,
  lineage_id    INTEGER NOT NULL,
  issue_number  INTEGER NOT NULL,
  html_url      TEXT NOT NULL,
  updated_at    TEXT NOT NULL,
  PRIMARY KEY (repo, lineage_id)
);
CREATE INDEX github_issues_number ON github_issues(repo, issue_number);
CREATE TABLE github_comments (
  repo          TEXT NOT NULL,
  idem_key      TEXT NOT NULL,
  issue_number  INTEGER NOT NULL,
  comment_id    INTEGER NOT NULL,
  html_url      TEXT NOT NULL,
  updated_at    TEXT NOT NULL,
  PRIMARY KEY (repo, idem_key)
);
