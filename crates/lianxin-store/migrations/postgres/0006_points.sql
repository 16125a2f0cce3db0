-- Points (以积分享兑换): scoring rules, a double-entry ledger, the catalogue and
-- redemptions (PostgreSQL). See crates/lianxin-store/src/points.rs and
-- crates/lianxin-domain/src/points.rs for the accounts, assets and rules.

-- Scoring rules, versioned: a new version never changes an old award.
CREATE TABLE points_rules (
    code TEXT NOT NULL,
    version BIGINT NOT NULL CHECK (version >= 1),
    category TEXT NOT NULL,
    points BIGINT NOT NULL CHECK (points > 0),
    pct_basic BIGINT NOT NULL CHECK (pct_basic > 0),
    pct_good BIGINT NOT NULL CHECK (pct_good > 0),
    pct_excellent BIGINT NOT NULL CHECK (pct_excellent > 0),
    cap_period TEXT CHECK (cap_period IN ('day', 'week', 'month', 'quarter')),
    cap_points BIGINT CHECK (cap_points > 0),
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
    balance BIGINT NOT NULL,
    PRIMARY KEY (account, asset),
    CHECK (balance >= 0 OR account LIKE 'pool:%')
);

-- Immutable transfers: `amount` of `asset` moves from `debit` to `credit`. A
-- correction is a new transfer that names the one it reverses (at most once).
CREATE TABLE points_transfers (
    id BIGSERIAL PRIMARY KEY,
    debit TEXT NOT NULL,
    credit TEXT NOT NULL,
    asset TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    reason TEXT NOT NULL,
    refs TEXT NOT NULL,
    award_id TEXT UNIQUE,
    redemption_id BIGINT,
    reverses_id BIGINT UNIQUE REFERENCES points_transfers(id),
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
    person_id BIGINT NOT NULL,
    org_id BIGINT NOT NULL,
    rule_code TEXT NOT NULL,
    rule_version BIGINT NOT NULL,
    category TEXT NOT NULL,
    quality TEXT NOT NULL,
    at TEXT NOT NULL,
    period_key TEXT,
    requested BIGINT NOT NULL,
    points BIGINT NOT NULL CHECK (points >= 0),
    created_at TEXT NOT NULL,
    FOREIGN KEY (rule_code, rule_version) REFERENCES points_rules(code, version)
);
CREATE INDEX points_awards_person ON points_awards(person_id, at);

-- Points earned per person, rule and cap period (kept for capped rules only).
CREATE TABLE points_earned (
    person_id BIGINT NOT NULL,
    rule_code TEXT NOT NULL,
    period_key TEXT NOT NULL,
    earned BIGINT NOT NULL CHECK (earned >= 0),
    PRIMARY KEY (person_id, rule_code, period_key)
);

-- An organisation's catalogue. Stock is the balance of `stock:{id}` in `item:{id}`.
CREATE TABLE points_items (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    cost BIGINT NOT NULL CHECK (cost > 0),
    window_first BIGINT NOT NULL CHECK (window_first BETWEEN 1 AND 92),
    window_last BIGINT NOT NULL CHECK (window_last BETWEEN window_first AND 92),
    created_at TEXT NOT NULL
);
CREATE INDEX points_items_org ON points_items(org_id);

-- One redemption per person per quarter, whatever the item.
CREATE TABLE points_redemptions (
    id BIGSERIAL PRIMARY KEY,
    person_id BIGINT NOT NULL,
    item_id BIGINT NOT NULL REFERENCES points_items(id),
    year BIGINT NOT NULL,
    quarter BIGINT NOT NULL CHECK (quarter BETWEEN 1 AND 4),
    cost BIGINT NOT NULL,
    at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (person_id, year, quarter)
);
