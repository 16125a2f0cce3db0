-- The demand closed loop (SQLite). See crates/lianxin-store/src/demands.rs.

-- Categories of demand; they are also the Open311 services.
CREATE TABLE demand_categories (
    code TEXT PRIMARY KEY,
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    default_urgency TEXT NOT NULL DEFAULT 'ordinary',
    -- Open311 service attributes (JSON array); '[]' when there are none.
    attributes TEXT NOT NULL DEFAULT '[]',
    keywords TEXT NOT NULL DEFAULT '',
    sort INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 1
);

-- category '' is the catch-all rule for its place.
CREATE TABLE routing_rules (
    id INTEGER PRIMARY KEY,
    category TEXT NOT NULL DEFAULT '',
    place_id INTEGER NOT NULL REFERENCES places(id),
    unit_id INTEGER NOT NULL REFERENCES orgs(id),
    created_at TEXT NOT NULL,
    UNIQUE (category, place_id)
);

-- category '' holds the default for the urgency.
CREATE TABLE time_limits (
    category TEXT NOT NULL DEFAULT '',
    urgency TEXT NOT NULL,
    time_limit TEXT NOT NULL,
    PRIMARY KEY (category, urgency)
);

-- Holiday calendars added by admins for years after the built-in ones (TOML text).
CREATE TABLE calendar_years (
    year INTEGER PRIMARY KEY,
    toml TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE demands (
    id INTEGER PRIMARY KEY,
    region TEXT NOT NULL,
    kind TEXT NOT NULL,
    category TEXT NOT NULL REFERENCES demand_categories(code),
    urgency TEXT NOT NULL,
    channel TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    place_id INTEGER NOT NULL REFERENCES places(id),
    place_path TEXT NOT NULL,
    lat REAL,
    lon REAL,
    address TEXT,
    attributes TEXT,
    reporter_account_id INTEGER REFERENCES accounts(id),
    reporter_name TEXT,
    reporter_phone_enc TEXT,
    reporter_phone_hash TEXT,
    reporter_phone_masked TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    owner_id INTEGER NOT NULL REFERENCES orgs(id),
    handler_id INTEGER REFERENCES orgs(id),
    transfer_to INTEGER REFERENCES orgs(id),
    supervisor_id INTEGER REFERENCES orgs(id),
    escalation_level INTEGER NOT NULL DEFAULT 0,
    deadline TEXT NOT NULL,
    response_deadline TEXT NOT NULL,
    handling_deadline TEXT NOT NULL,
    first_response_at TEXT,
    rating TEXT,
    reopened INTEGER NOT NULL DEFAULT 0,
    overdue INTEGER NOT NULL DEFAULT 0,
    -- The warning (or rating reminder) for the current deadline was sent.
    warned INTEGER NOT NULL DEFAULT 0,
    -- When the current deadline was set.
    step_at TEXT NOT NULL,
    answer TEXT,
    merged_into INTEGER REFERENCES demands(id),
    visit_id INTEGER,
    timer_at TEXT,
    timer_kind TEXT,
    counted_unit INTEGER NOT NULL,
    counted_bits INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    closed_at TEXT,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX demands_place ON demands(place_path);
CREATE INDEX demands_owner ON demands(owner_id, status);
CREATE INDEX demands_handler ON demands(handler_id, status);
CREATE INDEX demands_supervisor ON demands(supervisor_id);
CREATE INDEX demands_timer ON demands(timer_at) WHERE timer_at IS NOT NULL;
CREATE INDEX demands_received ON demands(received_at);
CREATE INDEX demands_reporter ON demands(reporter_account_id);

-- Every step of every demand: its history. Append-only.
CREATE TABLE demand_events (
    id INTEGER PRIMARY KEY,
    demand_id INTEGER NOT NULL REFERENCES demands(id),
    region TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    unit_id INTEGER REFERENCES orgs(id),
    note TEXT
);
CREATE INDEX demand_events_demand ON demand_events(demand_id, id);
CREATE TRIGGER demand_events_no_update BEFORE UPDATE ON demand_events
BEGIN SELECT RAISE(ABORT, 'demand_events is append-only'); END;
CREATE TRIGGER demand_events_no_delete BEFORE DELETE ON demand_events
BEGIN SELECT RAISE(ABORT, 'demand_events is append-only'); END;

CREATE TABLE demand_photos (
    id INTEGER PRIMARY KEY,
    demand_id INTEGER NOT NULL REFERENCES demands(id),
    region TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    bytes BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX demand_photos_demand ON demand_photos(demand_id);

-- Warnings and reminders the scheduler raised, for a unit or a reporter.
CREATE TABLE demand_notices (
    id INTEGER PRIMARY KEY,
    demand_id INTEGER NOT NULL REFERENCES demands(id),
    region TEXT NOT NULL,
    unit_id INTEGER REFERENCES orgs(id),
    account_id INTEGER REFERENCES accounts(id),
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    read_at TEXT
);
CREATE INDEX demand_notices_unit ON demand_notices(unit_id, id);
CREATE INDEX demand_notices_account ON demand_notices(account_id, id);

-- The three rates (lianxin_domain::rates::RateCounts), pre-summed per receipt period
-- × accountable unit × place, at two grains: 'd' (day = '2026-11-28') and 'm' (day =
-- '2026-11', the month), so a long period reads whole months and only its edge days.
-- Each demand remembers what it added (demands.counted_unit, counted_bits) so a change
-- takes back exactly that, from both grains.
CREATE TABLE rate_cells (
    grain TEXT NOT NULL,
    day TEXT NOT NULL,
    unit_id INTEGER NOT NULL,
    place_id INTEGER NOT NULL,
    place_path TEXT NOT NULL,
    region TEXT NOT NULL,
    received INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    merged INTEGER NOT NULL,
    response_due INTEGER NOT NULL,
    responded_in_time INTEGER NOT NULL,
    resolution_due INTEGER NOT NULL,
    resolved INTEGER NOT NULL,
    rated INTEGER NOT NULL,
    satisfied INTEGER NOT NULL,
    strictly_satisfied INTEGER NOT NULL,
    PRIMARY KEY (grain, day, unit_id, place_id)
) WITHOUT ROWID;
CREATE INDEX rate_cells_place ON rate_cells(place_path, grain, day);

-- Idempotency-Key claims: a retry gets the first response back.
CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status INTEGER,
    body TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
