-- The rider gate pass (新通码): platforms, riders and their device keys, orders,
-- tickets, issuer keys, gates and the scan log (SQLite).
-- See crates/lianxin-store/src/gate.rs and docs/decisions/0013-gate-pass.md.

-- A delivery platform (Meituan, Ele.me, a courier …). It declares orders through the
-- API with a token of its own account (scope `gate:platform`).
CREATE TABLE gate_platforms (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    account_id INTEGER NOT NULL UNIQUE REFERENCES accounts(id),
    created_at TEXT NOT NULL
);

-- A rider: no name, phone or ID number in clear. The ID-card number only as a keyed
-- hash (purpose "id_card", as for people); the name only masked (王**).
CREATE TABLE gate_riders (
    id INTEGER PRIMARY KEY,
    platform_id INTEGER NOT NULL REFERENCES gate_platforms(id),
    name_masked TEXT NOT NULL,
    id_card_hash TEXT NOT NULL UNIQUE,
    account_id INTEGER UNIQUE REFERENCES accounts(id),
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    verified_by TEXT NOT NULL,
    region TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX gate_riders_platform ON gate_riders(platform_id);
-- The revocation list reads the few riders who are not active.
CREATE INDEX gate_riders_status ON gate_riders(status, updated_at);

-- A rider's phone key (Ed25519 public key, 64 hex characters).
CREATE TABLE gate_devices (
    id INTEGER PRIMARY KEY,
    rider_id INTEGER NOT NULL REFERENCES gate_riders(id),
    public_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX gate_devices_rider ON gate_devices(rider_id);
CREATE INDEX gate_devices_status ON gate_devices(status, revoked_at);

-- An order a platform declared: idempotent on (platform, platform order id).
CREATE TABLE gate_orders (
    id INTEGER PRIMARY KEY,
    platform_id INTEGER NOT NULL REFERENCES gate_platforms(id),
    platform_order_id TEXT NOT NULL,
    rider_id INTEGER NOT NULL REFERENCES gate_riders(id),
    compound_id INTEGER NOT NULL REFERENCES places(id),
    building_id INTEGER REFERENCES places(id),
    window_from TEXT NOT NULL,
    window_until TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'cancelled')),
    region TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (platform_id, platform_order_id)
);
CREATE INDEX gate_orders_rider ON gate_orders(rider_id, window_until);

-- The issuer's signing keys. The private key is sealed with the master key
-- (PiiKey::encrypt); `accepted_until` is NULL while the key is current.
CREATE TABLE gate_issuer_keys (
    kid TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    private_key_enc TEXT NOT NULL,
    created_at TEXT NOT NULL,
    accepted_until INTEGER
);

-- A ticket the server signed. The pseudonym (32 hex) is fresh per ticket.
CREATE TABLE gate_tickets (
    id INTEGER PRIMARY KEY,
    pseudonym TEXT NOT NULL UNIQUE,
    digest TEXT NOT NULL UNIQUE,
    order_id INTEGER NOT NULL REFERENCES gate_orders(id),
    rider_id INTEGER NOT NULL REFERENCES gate_riders(id),
    device_id INTEGER NOT NULL REFERENCES gate_devices(id),
    compound_id INTEGER NOT NULL REFERENCES places(id),
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    kid TEXT NOT NULL REFERENCES gate_issuer_keys(kid),
    bytes TEXT NOT NULL,
    region TEXT NOT NULL,
    issued_at TEXT NOT NULL
);
CREATE INDEX gate_tickets_order ON gate_tickets(order_id, not_after);
CREATE INDEX gate_tickets_rider ON gate_tickets(rider_id, not_after);
CREATE INDEX gate_tickets_device ON gate_tickets(device_id, not_after);

-- A gate device at a compound, with its own account (token scope `gate:scan`).
CREATE TABLE gate_gates (
    id INTEGER PRIMARY KEY,
    compound_id INTEGER NOT NULL REFERENCES places(id),
    name TEXT NOT NULL,
    account_id INTEGER NOT NULL UNIQUE REFERENCES accounts(id),
    region TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX gate_gates_compound ON gate_gates(compound_id);

-- Every scan, passed or denied. `replay_key` (ticket digest hex ':' step) is set on
-- the scan that spent the code: its UNIQUE constraint is the replay guard that holds
-- across processes and servers. NULLs (scans refused before that check) never clash.
CREATE TABLE gate_events (
    id INTEGER PRIMARY KEY,
    gate_id INTEGER NOT NULL REFERENCES gate_gates(id),
    compound_id INTEGER NOT NULL REFERENCES places(id),
    pseudonym TEXT,
    step INTEGER,
    replay_key TEXT UNIQUE,
    direction TEXT NOT NULL CHECK (direction IN ('entry', 'exit')),
    outcome TEXT NOT NULL,
    -- How long the server took from the request to the logged decision (online
    -- scans); NULL for events a gate box uploaded.
    took_ms INTEGER,
    region TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX gate_events_compound ON gate_events(compound_id, at);
CREATE INDEX gate_events_pseudonym ON gate_events(pseudonym);

-- Who is inside now, by ticket pseudonym.
CREATE TABLE gate_presence (
    pseudonym TEXT PRIMARY KEY,
    inside INTEGER NOT NULL,
    region TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
