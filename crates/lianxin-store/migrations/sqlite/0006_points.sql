-- Points (以积分享兑换): scoring rules, a double-entry ledger, the catalogue and
-- redemptions (SQLite). See crates/lianxin-store/src/points.rs and
-- crates/lianxin-domain/src/points.rs for the accounts, assets and rules.

-- Scoring rules, versioned: a new version never changes an old award.
CREATE TABLE points_rules (
    code TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    category TEXT NOT NULL,
    points INTEGER NOT NULL CHECK (points > 0),
    pct_basic INTEGER NOT NULL CHECK (pct_basic > 0),
    pct_good INTEGER NOT NULL CHECK (pct_good > 0),
    pct_excellent INTEGER NOT NULL CHECK (pct_excellent > 0),
    cap_period TEXT CHECK (cap_period IN ('day', 'week', 'month', 'quarter')),
    cap_points INTEGER CHECK (cap_points > 0),
    valid_from TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (code, version),
    CHECK ((cap_period IS NULL) = (cap_points IS NULL))
);

-- One balance per (account, asset), changed only in the transaction that writes the
-- transfer. Only issuing pools may go below zero (they issue without pre-funding).
CREATE TABLE points_balances (
    account TEXT NOT NULL,
    asset TEXT NOT NULL,
    balance INTEGER NOT NULL,
    PRIMARY KEY (account, asset),
    CHECK (balance >= 0 OR account LIKE 'pool:%')
);

-- Immutable transfers: `amount` of `asset` moves from `debit` to `credit`. A
-- correction is a new transfer that names the one it reverses (at most once).
CREATE TABLE points_transfers (
    id INTEGER PRIMARY KEY,
    debit TEXT NOT NULL,
    credit TEXT NOT NULL,
    asset TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    reason TEXT NOT NULL,
    refs TEXT NOT NULL,
    award_id TEXT UNIQUE,
    redemption_id INTEGER,
    reverses_id INTEGER UNIQUE REFERENCES points_transfers(id),
    actor TEXT NOT NULL,
    created_at TEXT NOT NULL,
    CHECK (debit <> credit)
);
CREATE INDEX points_transfers_debit ON points_transfers(debit, asset);
CREATE INDEX points_transfers_credit ON points_transfers(credit, asset);

-- Every award asked for, by its derived id: the idempotency record. An award that
-- the cap cut to 0 has a row here and no transfer.
CREATE TABLE points_awards (
    award_id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    event_ref TEXT NOT NULL,
    person_id INTEGER NOT NULL,
    org_id INTEGER NOT NULL,
    rule_code TEXT NOT NULL,
    rule_version INTEGER NOT NULL,
    category TEXT NOT NULL,
    quality TEXT NOT NULL,
    at TEXT NOT NULL,
    period_key TEXT,
    requested INTEGER NOT NULL,
    points INTEGER NOT NULL CHECK (points >= 0),
    created_at TEXT NOT NULL,
    FOREIGN KEY (rule_code, rule_version) REFERENCES points_rules(code, version)
);
CREATE INDEX points_awards_person ON points_awards(person_id, at);

-- Points earned per person, rule and cap period (kept for capped rules only).
CREATE TABLE points_earned (
    person_id INTEGER NOT NULL,
    rule_code TEXT NOT NULL,
    period_key TEXT NOT NULL,
    earned INTEGER NOT NULL CHECK (earned >= 0),
    PRIMARY KEY (person_id, rule_code, period_key)
);

-- An organisation's catalogue. Stock is the balance of `stock:{id}` in `item:{id}`.
CREATE TABLE points_items (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    cost INTEGER NOT NULL CHECK (cost > 0),
    window_first INTEGER NOT NULL CHECK (window_first BETWEEN 1 AND 92),
    window_last INTEGER NOT NULL CHECK (window_last BETWEEN window_first AND 92),
    created_at TEXT NOT NULL
);
CREATE INDEX points_items_org ON points_items(org_id);

-- One redemption per person per quarter, whatever the item.
CREATE TABLE points_redemptions (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL,
    item_id INTEGER NOT NULL REFERENCES points_items(id),
    year INTEGER NOT NULL,
    quarter INTEGER NOT NULL CHECK (quarter BETWEEN 1 AND 4),
    cost INTEGER NOT NULL,
    at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (person_id, year, quarter)
);
