-- Registry, accounts and audit trail (SQLite).
CREATE TABLE places (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    level TEXT NOT NULL,
    parent_id INTEGER REFERENCES places(id),
    path TEXT NOT NULL,
    region TEXT NOT NULL,
    lat REAL,
    lon REAL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX places_parent ON places(parent_id);
CREATE INDEX places_path ON places(path);

CREATE TABLE orgs (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    parent_id INTEGER REFERENCES orgs(id),
    path TEXT NOT NULL,
    region TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX orgs_parent ON orgs(parent_id);
CREATE INDEX orgs_path ON orgs(path);

CREATE TABLE org_places (
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    place_id INTEGER NOT NULL REFERENCES places(id),
    PRIMARY KEY (org_id, place_id)
);
CREATE INDEX org_places_place ON org_places(place_id);

CREATE TABLE people (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    phone_enc TEXT,
    phone_hash TEXT,
    phone_masked TEXT,
    id_card_hash TEXT UNIQUE,
    party_member INTEGER NOT NULL DEFAULT 0,
    party_joined TEXT,
    place_id INTEGER NOT NULL REFERENCES places(id),
    region TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX people_place ON people(place_id);
CREATE INDEX people_phone ON people(phone_hash);
CREATE INDEX people_name ON people(name);

CREATE TABLE relations (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id),
    kind TEXT NOT NULL,
    org_id INTEGER REFERENCES orgs(id),
    place_id INTEGER REFERENCES places(id),
    post TEXT,
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    region TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX relations_person ON relations(person_id);
CREATE INDEX relations_place ON relations(place_id, valid_from);
CREATE INDEX relations_org ON relations(org_id, valid_from);

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    scope_place_id INTEGER REFERENCES places(id),
    scope_org_id INTEGER REFERENCES orgs(id),
    person_id INTEGER REFERENCES people(id),
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_account ON sessions(account_id);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);

CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The audit trail is append-only: the application never updates or deletes an entry.
-- These triggers make an accidental or careless edit fail loudly; the hash chain
-- catches a deliberate one made by someone who drops the triggers first.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
