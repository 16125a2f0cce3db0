-- Officials' contact points and visits, grids and households, dual registration,
-- needs lists and service records, organisation tiers (SQLite).
-- See crates/lianxin-store/src/{contact,grids,tiers}.rs and decision 0011.

-- The rules the organisation department sets: priority weights, visit norms,
-- assignment limits and tier thresholds. One row.
CREATE TABLE governance_rules (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    weight_task_load REAL NOT NULL,
    weight_weakness REAL NOT NULL,
    weight_complexity REAL NOT NULL,
    min_visits_per_year INTEGER NOT NULL,
    max_points_per_official INTEGER NOT NULL,
    tier_advanced REAL NOT NULL,
    tier_lagging REAL NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO governance_rules VALUES (1, 1.0, 1.0, 1.0, 4, 2, 80.0, 60.0, '1970-01-01T00:00:00Z');

-- A contact point: a village or community (place), an organisation, or a sector
-- such as delivery riders. Every point sits at a place, which gives it its scope.
CREATE TABLE contact_points (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    place_id INTEGER NOT NULL REFERENCES places(id),
    place_path TEXT NOT NULL,
    org_id INTEGER REFERENCES orgs(id),
    sector TEXT,
    -- One point per place, organisation or sector-at-a-place.
    point_key TEXT NOT NULL UNIQUE,
    task_load INTEGER NOT NULL,
    weakness INTEGER NOT NULL,
    complexity INTEGER NOT NULL,
    region TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX contact_points_path ON contact_points(place_path);

-- An official's effective-dated link to a point, [valid_from, valid_to).
CREATE TABLE point_links (
    id INTEGER PRIMARY KEY,
    point_id INTEGER NOT NULL REFERENCES contact_points(id),
    person_id INTEGER NOT NULL REFERENCES people(id),
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    rematch_id INTEGER,
    region TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX point_links_point ON point_links(point_id, valid_from);
CREATE INDEX point_links_person ON point_links(person_id, valid_from);

-- A re-match opened when an official's post ends: open → confirmed (an admin chose
-- the successor) → acknowledged (the successor took over the handover).
CREATE TABLE rematches (
    id INTEGER PRIMARY KEY,
    point_id INTEGER NOT NULL REFERENCES contact_points(id),
    predecessor_id INTEGER NOT NULL REFERENCES people(id),
    post TEXT NOT NULL,
    ended_on TEXT NOT NULL,
    status TEXT NOT NULL,
    successor_id INTEGER REFERENCES people(id),
    opened_at TEXT NOT NULL,
    confirmed_at TEXT,
    confirmed_by TEXT,
    acknowledged_at TEXT,
    region TEXT NOT NULL
);
CREATE INDEX rematches_status ON rematches(status, point_id);
CREATE INDEX rematches_successor ON rematches(successor_id, status);

-- What a re-match hands over: open demands collected at the point and visits with a
-- follow-up still owed.
CREATE TABLE handover_items (
    rematch_id INTEGER NOT NULL REFERENCES rematches(id),
    kind TEXT NOT NULL,
    item_id INTEGER NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (rematch_id, kind, item_id)
);

-- A visit: by an official to a point, or by a grid worker or member to a household.
-- place_id is where it happened (the household for a household visit).
CREATE TABLE visits (
    id INTEGER PRIMARY KEY,
    point_id INTEGER REFERENCES contact_points(id),
    person_id INTEGER NOT NULL REFERENCES people(id),
    kind TEXT NOT NULL,
    visited_on TEXT NOT NULL,
    place_id INTEGER NOT NULL REFERENCES places(id),
    place_path TEXT NOT NULL,
    participants TEXT NOT NULL,
    notes TEXT NOT NULL,
    follow_up TEXT,
    follow_up_person_id INTEGER REFERENCES people(id),
    follow_up_done_at TEXT,
    region TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX visits_point ON visits(point_id, visited_on);
CREATE INDEX visits_person ON visits(person_id, visited_on);
CREATE INDEX visits_place ON visits(place_id, visited_on);
CREATE INDEX visits_follow_up ON visits(follow_up_person_id, follow_up_done_at);

CREATE TABLE visit_photos (
    id INTEGER PRIMARY KEY,
    visit_id INTEGER NOT NULL REFERENCES visits(id),
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    bytes BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX visit_photos_visit ON visit_photos(visit_id);

-- Visits per point × official × year, kept in the same transaction as each visit so
-- the district view never counts the visits table.
CREATE TABLE visit_tallies (
    point_id INTEGER NOT NULL,
    person_id INTEGER NOT NULL,
    year INTEGER NOT NULL,
    visits INTEGER NOT NULL,
    region TEXT NOT NULL,
    PRIMARY KEY (point_id, person_id, year)
) WITHOUT ROWID;

-- Demands collected on a visit carry its point too, and every demand keeps when it
-- was first answered (for "time to answer").
ALTER TABLE demands ADD COLUMN point_id INTEGER REFERENCES contact_points(id);
ALTER TABLE demands ADD COLUMN answered_at TEXT;
CREATE INDEX demands_point ON demands(point_id, received_at);
CREATE INDEX demands_visit ON demands(visit_id);

-- ---- grids and households, 双进 registration, needs and service records ----------

-- Which grid a household belongs to, effective-dated: grids are redrawn, a household
-- never sits in two at once.
CREATE TABLE grid_households (
    id INTEGER PRIMARY KEY,
    household_id INTEGER NOT NULL REFERENCES places(id),
    grid_id INTEGER NOT NULL REFERENCES places(id),
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    region TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX grid_households_grid ON grid_households(grid_id, valid_from);
CREATE INDEX grid_households_household ON grid_households(household_id);

-- 双进: a party member (kind 'member', with a grid) or an organisation (kind 'org')
-- registers with the community where they live, with their skills.
CREATE TABLE registrations (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    person_id INTEGER REFERENCES people(id),
    org_id INTEGER REFERENCES orgs(id),
    community_id INTEGER NOT NULL REFERENCES places(id),
    grid_id INTEGER REFERENCES places(id),
    employer_org_id INTEGER REFERENCES orgs(id),
    skills TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    region TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX registrations_community ON registrations(community_id, valid_from);
CREATE INDEX registrations_person ON registrations(person_id);
CREATE INDEX registrations_org ON registrations(org_id);
CREATE INDEX registrations_employer ON registrations(employer_org_id);

-- A community's needs list: open → claimed (by a registered member) → done; a claim
-- may be released back to open.
CREATE TABLE needs (
    id INTEGER PRIMARY KEY,
    community_id INTEGER NOT NULL REFERENCES places(id),
    grid_id INTEGER REFERENCES places(id),
    title TEXT NOT NULL,
    detail TEXT NOT NULL,
    skills TEXT NOT NULL,
    status TEXT NOT NULL,
    posted_by TEXT NOT NULL,
    posted_at TEXT NOT NULL,
    claimed_by INTEGER REFERENCES people(id),
    claimed_at TEXT,
    -- When the completion was recorded, and the day (Shanghai) the service was given:
    -- quarterly reports count by the day.
    done_at TEXT,
    done_on TEXT,
    hours REAL,
    outcome TEXT,
    region TEXT NOT NULL
);
CREATE INDEX needs_community ON needs(community_id, status);
CREATE INDEX needs_claimed ON needs(claimed_by, done_on);

-- ---- organisation tiers (抓两头带中间) -------------------------------------------
-- Only party organisations are tiered. A tier is never stored: it is the mean of the
-- year's indicators against governance_rules.tier_advanced / tier_lagging, computed
-- when read, so changing the thresholds re-tiers every year at once.

-- An organisation's indicators for a year, each 0–100 with the evidence (note) it
-- rests on. A year's set is replaced whole; seq keeps the order it was given in.
CREATE TABLE org_indicators (
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    year INTEGER NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    value REAL NOT NULL CHECK (value >= 0 AND value <= 100),
    note TEXT NOT NULL,
    region TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (org_id, year, name)
);
CREATE INDEX org_indicators_year ON org_indicators(year, org_id);

-- An improvement plan, usually for a lagging organisation, and its tracked actions.
-- An action is overdue when its due day has passed and it has no done_on.
CREATE TABLE improvement_plans (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    year INTEGER NOT NULL,
    title TEXT NOT NULL,
    region TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX improvement_plans_org ON improvement_plans(org_id, year);
CREATE INDEX improvement_plans_year ON improvement_plans(year, org_id);

CREATE TABLE plan_actions (
    id INTEGER PRIMARY KEY,
    plan_id INTEGER NOT NULL REFERENCES improvement_plans(id),
    title TEXT NOT NULL,
    due_on TEXT NOT NULL,
    done_on TEXT,
    note TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    done_by TEXT
);
CREATE INDEX plan_actions_plan ON plan_actions(plan_id);

-- Model designations (模范支部, 五星级党支部, 先进基层党组织 …) with their year.
CREATE TABLE designations (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    title TEXT NOT NULL,
    year INTEGER NOT NULL,
    awarded_by TEXT NOT NULL,
    region TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (org_id, title, year)
);
CREATE INDEX designations_year ON designations(year);
