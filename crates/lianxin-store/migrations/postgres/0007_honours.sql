-- Points, continued: the year's honours (先锋骑手, 最美快递员) an official confirms
-- from the ranking by points earned, and the scheme's settings (PostgreSQL). See
-- crates/lianxin-store/src/points_honours.rs.

-- One row per person honoured in a year and category, kept as confirmed: the rank and
-- points are those of the ranking on the day of confirmation, so a later correction
-- does not silently rewrite a certificate already printed.
CREATE TABLE points_honours (
    year BIGINT NOT NULL,
    category TEXT NOT NULL,
    person_id BIGINT NOT NULL REFERENCES people(id),
    rank BIGINT NOT NULL CHECK (rank >= 1),
    points BIGINT NOT NULL CHECK (points > 0),
    title TEXT NOT NULL,
    certificate_no TEXT NOT NULL UNIQUE,
    confirmed_by TEXT NOT NULL,
    confirmed_at TEXT NOT NULL,
    PRIMARY KEY (year, category, person_id)
);

-- The scheme's settings, one row: the organisation whose pool issues the awards the
-- platform gives by itself (confirmed sentinel reports, volunteer hours).
CREATE TABLE points_settings (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    issuer_org_id BIGINT REFERENCES orgs(id),
    updated_at TEXT NOT NULL
);
INSERT INTO points_settings (id, issuer_org_id, updated_at) VALUES (1, NULL, '1970-01-01T00:00:00Z');
