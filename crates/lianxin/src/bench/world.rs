//! The world every benchmark database starts from: a town with twenty communities,
//! ten units that serve them, one category and one catch-all routing rule — the
//! least the desk needs to accept, route and time a demand — and the demand rows
//! the benchmark writes directly, shaped like the ones the desk writes.

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};
use lianxin_domain::demand::{Status, Urgency};
use lianxin_domain::draft::{OrgDraft, PlaceDraft, RawOrg, RawPlace};
use lianxin_domain::intake::{self, Channel, DemandKind};
use lianxin_domain::rates::{DemandOutcome, RateCounts};
use lianxin_domain::role::DataScope;
use lianxin_store::audit::Actor;
use lianxin_store::demands::{Category, NewDemand, NewEvent};
use lianxin_store::registry::{Org, Place};
use lianxin_store::Store;

/// The one category every benchmark demand is filed under.
pub const CATEGORY: &str = "utilities";

/// What every benchmark demand says (a realistic length for a short complaint).
pub const DESCRIPTION: &str =
    "小区3号楼停水已经两天了，物业说是主管道维修，但一直没有通知什么时候恢复，老人和孩子用水很困难，请尽快协调。";

/// How many communities and units the world has.
pub const COMMUNITIES: usize = 20;
pub const UNITS: usize = 10;

pub struct World {
    /// The communities demands are filed at.
    pub communities: Vec<Place>,
    /// The units demands are counted for; the routing rule sends everything to the first.
    pub units: Vec<Org>,
}

/// Seeds `store` (a fresh database) with the world.
pub async fn seed(store: &Store) -> Result<World> {
    let actor = Actor::system("bench");
    let all = DataScope::everything();
    let place = |code: String, name: String, level: &str, parent: Option<&str>| {
        PlaceDraft::parse(&RawPlace {
            code,
            name,
            level: level.into(),
            parent_code: parent.map(Into::into),
            ..Default::default()
        })
        .map_err(|e| anyhow::anyhow!("place draft: {}", e.message))
    };
    let mut top = Vec::new();
    for (code, name, level, parent) in [
        ("150000", "内蒙古自治区", "region", None),
        ("150200", "包头市", "city", Some("150000")),
        ("150207", "九原区", "county", Some("150200")),
        ("150207.BYXL", "白音席勒街道", "town", Some("150207")),
    ] {
        let d = place(code.into(), name.into(), level, parent)?;
        top.push(store.create_place(&actor, &all, &d).await?);
    }
    let town = top.last().context("the town")?.clone();
    let mut communities = Vec::with_capacity(COMMUNITIES);
    for i in 1..=COMMUNITIES {
        let d = place(
            format!("150207.BYXL.C{i:02}"),
            format!("第{i}社区"),
            "village",
            Some(&town.code),
        )?;
        communities.push(store.create_place(&actor, &all, &d).await?);
    }
    let mut units = Vec::with_capacity(UNITS);
    for i in 0..UNITS {
        // Each unit serves two communities.
        let serves = (0..2)
            .map(|k| communities[(2 * i + k) % COMMUNITIES].code.clone())
            .collect();
        let d = OrgDraft::parse(&RawOrg {
            code: format!("BENCH-U{:02}", i + 1),
            name: format!("办理单位{}", i + 1),
            kind: "government_department".into(),
            parent_code: None,
            serves,
        })
        .map_err(|e| anyhow::anyhow!("org draft: {}", e.message))?;
        units.push(store.create_org(&actor, &all, &d).await?);
    }
    store
        .upsert_category(
            &actor,
            &Category {
                code: CATEGORY.into(),
                name_zh: "水电气暖".into(),
                name_en: "Utilities".into(),
                description: "Water, power, gas and heating".into(),
                default_urgency: Urgency::Ordinary,
                attributes: serde_json::Value::Array(vec![]),
                keywords: "停水 停电".into(),
                sort: 1,
                active: true,
            },
        )
        .await?;
    store
        .create_routing_rule(&actor, None, town.id, units[0].id)
        .await?;
    Ok(World { communities, units })
}

/// A new demand as the desk would store it for a web submission, with a fresh
/// tracking-token hash (the column is unique, and random keys cost the index what
/// real ones do).
pub fn demand(
    place: &Place,
    unit_id: i64,
    received_at: DateTime<Utc>,
    deadline: DateTime<Utc>,
    counted_bits: u16,
) -> NewDemand {
    let channel = Channel::Web;
    let kind = DemandKind::Help;
    NewDemand {
        region: place.region.clone(),
        kind,
        category: CATEGORY.into(),
        urgency: Urgency::Ordinary,
        channel,
        title: intake::title_from(DESCRIPTION),
        description: DESCRIPTION.into(),
        place_id: place.id,
        place_path: place.path.clone(),
        lat: None,
        lon: None,
        address: None,
        attributes: None,
        reporter_account_id: None,
        reporter_name: None,
        reporter_phone: None,
        token_hash: random_hash(),
        status: lianxin_domain::demand::Status::Received,
        owner_id: unit_id,
        handler_id: None,
        deadline,
        response_deadline: deadline,
        handling_deadline: deadline,
        timer_at: Some(received_at + (deadline - received_at) * 4 / 5),
        timer_kind: Some("warn".into()),
        counted_bits,
        received_at,
        visit_id: None,
        photos: Vec::new(),
        event: NewEvent {
            actor: "system:bench".into(),
            actor_name: "bench".into(),
            action: "submit".into(),
            unit_id: Some(unit_id),
            note: Some(format!("{} · {}", channel.label_zh(), kind.label_zh())),
        },
    }
}

/// A demand received now with the usual three working days (about five calendar
/// days) to go, counted as the desk counts a fresh one: received, nothing judged yet.
pub fn fresh_demand(place: &Place, unit_id: i64) -> NewDemand {
    let now = Utc::now();
    let deadline = now + Duration::days(5);
    let outcome = DemandOutcome {
        received_at: now,
        response_deadline: deadline,
        handling_deadline: deadline,
        first_response_at: None,
        status: Status::Received,
        rating: None,
    };
    let bits = RateCounts::of(&outcome, now).to_bits().unwrap_or(1);
    demand(place, unit_id, now, deadline, bits)
}

/// 64 random hex digits, the shape of a SHA-256 token hash.
pub fn random_hash() -> String {
    format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    )
}
