//! The demand loop of the demo world (`demo/loop.toml`): categories, routing rules
//! (九原区 and 锡林郭勒盟's five-party linkage), an Open311 client key, and sample
//! demands at every stage of the loop, with a back-dated history so the dashboard,
//! the queue's deadline clocks and the scheduler's escalations have something to show.

use anyhow::{bail, Context, Result};
use chrono::Duration;
use lianxin_domain::demand::{Rating, Urgency};
use lianxin_domain::role::Role;
use lianxin_server::desk::{Action, Intake, StepBy, Submitter};
use lianxin_server::AppState;
use lianxin_store::accounts::NewAccount;
use lianxin_store::audit::Actor;
use lianxin_store::demands::Category;
use serde::Deserialize;

const LOOP: &str = include_str!("loop.toml");
const LOADED_MARKER: &str = "demo_loop_loaded";
const OPEN311_KEY: &str = "demo_open311_api_key";

#[derive(Deserialize)]
struct LoopWorld {
    category: Vec<LoopCategory>,
    rule: Vec<LoopRule>,
    demand: Vec<LoopDemand>,
}

#[derive(Deserialize)]
struct LoopCategory {
    code: String,
    name_zh: String,
    name_en: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    default_urgency: Option<String>,
    #[serde(default)]
    keywords: String,
    sort: i64,
    #[serde(default)]
    attributes: Option<String>,
}

#[derive(Deserialize)]
struct LoopRule {
    category: String,
    place: String,
    unit: String,
}

#[derive(Deserialize)]
struct LoopDemand {
    days_ago: i64,
    kind: String,
    category: String,
    place: String,
    channel: String,
    description: String,
    upto: String,
    #[serde(default)]
    handler: Option<String>,
}

/// Loads the loop's demo data once; returns the demo Open311 API key.
pub async fn ensure_loaded(state: &AppState) -> Result<String> {
    let store = &state.store;
    if store.meta_get(LOADED_MARKER).await?.is_some() {
        return store
            .meta_get(OPEN311_KEY)
            .await?
            .context("the demo Open311 key is missing");
    }
    let world: LoopWorld = toml::from_str(LOOP).context("demo/loop.toml")?;
    let actor = Actor::system("demo");
    for c in &world.category {
        let attributes = match &c.attributes {
            Some(text) => serde_json::from_str(text)
                .with_context(|| format!("attributes of category {}", c.code))?,
            None => serde_json::Value::Array(vec![]),
        };
        store
            .upsert_category(
                &actor,
                &Category {
                    code: c.code.clone(),
                    name_zh: c.name_zh.clone(),
                    name_en: c.name_en.clone(),
                    description: c.description.clone(),
                    default_urgency: Urgency::parse(
                        c.default_urgency.as_deref().unwrap_or("ordinary"),
                    )
                    .map_err(|e| anyhow::anyhow!(e.message))?,
                    attributes,
                    keywords: c.keywords.clone(),
                    sort: c.sort,
                    active: true,
                },
            )
            .await?;
    }
    for r in &world.rule {
        let Some(place) = store.place_by_code(&r.place).await? else {
            bail!("loop.toml: unknown place {}", r.place);
        };
        let Some(unit) = store.org_by_code(&r.unit).await? else {
            bail!("loop.toml: unknown unit {}", r.unit);
        };
        let category = (!r.category.is_empty()).then_some(r.category.as_str());
        store
            .create_routing_rule(&actor, category, place.id, unit.id)
            .await?;
    }
    state.desk.reload().await?;

    // The Open311 client: an account that can do nothing but submit, and its key.
    let hash = lianxin_server::auth::hash_password(&lianxin_domain::pii::random_token("", 24))
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let client = store
        .create_account(
            &actor,
            &NewAccount {
                username: "open311.client".into(),
                display_name: "Open311 示例客户端".into(),
                password_hash: hash,
                role: Role::Resident,
                scope_place_code: None,
                scope_org_code: None,
                person_id: None,
            },
        )
        .await?;
    let (key, _) = lianxin_server::api::issue_token(
        store,
        &actor,
        "Open311 demo client",
        client.id,
        &["open311".to_string()],
        None,
    )
    .await
    .map_err(|e| anyhow::anyhow!(e.message))?;
    store.meta_set(OPEN311_KEY, &key).await?;

    load_demands(state, &world.demand).await?;
    store
        .meta_set(LOADED_MARKER, &lianxin_store::now_text())
        .await?;
    Ok(key)
}

/// Replays each sample demand's history on the desk's clock, moved back to the day it
/// was received, then puts the clock back.
async fn load_demands(state: &AppState, demands: &[LoopDemand]) -> Result<()> {
    let resident = state
        .store
        .account_by_username("resident")
        .await?
        .map(|(a, _)| a);
    let staff = StepBy {
        actor: "system:demo".into(),
        name: "示例工作人员".into(),
        units: None,
    };
    let clock = &state.desk.clock;
    for (i, d) in demands.iter().enumerate() {
        // Received at 09:00-ish on the day, steps a few hours apart.
        let back = Duration::days(d.days_ago) + Duration::hours(i as i64 % 5);
        clock.advance(-back);
        let mut moved = Duration::zero();
        let mut step = |h: i64| {
            clock.advance(Duration::hours(h));
            moved += Duration::hours(h);
        };
        let in_ky = d.place.starts_with("150207.BYXL.KY");
        let by = match (&resident, in_ky) {
            (Some(r), true) => Submitter {
                actor: format!("account:{}", r.id),
                name: r.display_name.clone(),
                account_id: Some(r.id),
            },
            _ => Submitter {
                actor: "public".into(),
                name: "居民".into(),
                account_id: None,
            },
        };
        let submitted = state
            .desk
            .submit(
                Intake {
                    kind: d.kind.clone(),
                    category: d.category.clone(),
                    channel: d.channel.clone(),
                    description: d.description.clone(),
                    place_code: Some(d.place.clone()),
                    reporter_name: (!in_ky).then(|| "张女士（示例）".to_string()),
                    ..Intake::default()
                },
                &by,
            )
            .await
            .with_context(|| format!("demo demand {}", i + 1))?;
        let id = submitted.id;
        let handler = match &d.handler {
            Some(code) => {
                state
                    .store
                    .org_by_code(code)
                    .await?
                    .with_context(|| format!("unknown handler {code}"))?
                    .id
            }
            None => submitted.owner_id,
        };
        let order = [
            "received",
            "assessed",
            "assigned",
            "in_progress",
            "answered",
        ];
        let reach = match d.upto.as_str() {
            "satisfied" | "basically" | "unsatisfied" => order.len(),
            "rejected" => 0,
            other => {
                order
                    .iter()
                    .position(|s| *s == other)
                    .with_context(|| format!("unknown stage {other}"))?
                    + 1
            }
        };
        let act = |a: Action| {
            let staff = staff.clone();
            async move { state.desk.act(id, staff, a).await }
        };
        if d.upto == "rejected" {
            step(3);
            act(Action::Reject {
                reason: "不属于受理范围，已告知反映人办理渠道".into(),
            })
            .await?;
        }
        // A one-tap repair arrives already dispatched to the property company.
        let dispatched = submitted.status == lianxin_domain::demand::Status::Assigned;
        if reach >= 2 && !dispatched {
            step(2);
            act(Action::Assess {
                urgency: None,
                category: None,
                deadline: None,
                note: Some("已核实情况".into()),
            })
            .await?;
        }
        if reach >= 3 && !dispatched {
            step(1);
            act(Action::Assign {
                unit: handler,
                deadline: None,
                note: None,
            })
            .await?;
        }
        if reach >= 4 {
            step(20);
            act(Action::Start {
                note: Some("已到现场查看".into()),
            })
            .await?;
        }
        if reach >= 5 {
            step(30);
            act(Action::Answer {
                text: "已协调有关单位处理完毕，请您查看。".into(),
            })
            .await?;
        }
        let rating = match d.upto.as_str() {
            "satisfied" => Some(Rating::Satisfied),
            "basically" => Some(Rating::BasicallySatisfied),
            "unsatisfied" => Some(Rating::Unsatisfied),
            _ => None,
        };
        if let Some(rating) = rating {
            step(5);
            state.desk.rate(id, by.actor.clone(), rating, None).await?;
        }
        clock.advance(back - moved);
    }
    Ok(())
}
