//! The contact points of the demo world (M1): the 九原区 officials' points with their
//! priority indicators and effective-dated links, a riders' sector point nobody holds
//! yet (so the dashboard shows its warning), and this year's visits — 117 of them by
//! the 17 officials, which collected a little over a hundred demands — replayed on the
//! desk's clock so the demands have real histories and answer times. A grid worker's
//! household visits give the coverage table something to show.
//!
//! Indicators, visit dates and demand texts are generated from a fixed seed and are
//! ILLUSTRATIVE; the counts (17 officials, 117 visits, 100+ demands) are the
//! article's.

use anyhow::{Context, Result};
use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use lianxin_domain::contact::{PointIndicators, PointKind, VisitKind};
use lianxin_domain::relation::Validity;
use lianxin_domain::role::DataScope;
use lianxin_server::desk::{Action, Intake, StepBy, Submitter};
use lianxin_server::AppState;
use lianxin_store::audit::Actor;
use lianxin_store::contact::{NewPoint, NewVisit};
use lianxin_store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const LOADED_MARKER: &str = "demo_contact_loaded";
/// The article's figures.
const VISITS: usize = 117;
const DEMANDS: usize = 104;

/// Creates the points and links while the world loads: `officials` are (person id,
/// point codes); `former` held 开元社区 until 2025.
pub async fn load_points(
    store: &Store,
    officials: &[(i64, Vec<String>)],
    former: i64,
) -> Result<()> {
    let actor = Actor::system("demo");
    let all = DataScope::everything();
    let mut rng = StdRng::seed_from_u64(117);
    let mut codes: Vec<&String> = officials.iter().flat_map(|(_, p)| p).collect();
    codes.sort();
    codes.dedup();
    for code in codes {
        let place = store
            .place_by_code(code)
            .await?
            .with_context(|| format!("contact point place {code}"))?;
        let kind = if place.name.ends_with('村') {
            PointKind::Village
        } else {
            PointKind::Community
        };
        // The article's 二道沙河西村 and 开元社区 are the heavy ones.
        let heavy = code.ends_with("EDSHX") || code.ends_with(".KY");
        let ind = if heavy {
            PointIndicators::new(
                rng.gen_range(80..=95),
                rng.gen_range(70..=90),
                rng.gen_range(70..=90),
            )?
        } else {
            PointIndicators::new(
                rng.gen_range(35..=85),
                rng.gen_range(30..=80),
                rng.gen_range(30..=80),
            )?
        };
        store
            .create_point(
                &actor,
                &all,
                &NewPoint {
                    kind,
                    name: None,
                    place_code: code.clone(),
                    org_code: None,
                    sector: None,
                    indicators: ind,
                },
            )
            .await?;
    }
    let points = store.points(&all).await?;
    let by_code = |code: &str| -> Result<i64> {
        points
            .iter()
            .find(|p| p.place_path.ends_with(&format!("/{code}/")))
            .map(|p| p.id)
            .with_context(|| format!("point {code}"))
    };
    // The predecessor's link, before the current officials took over in 2025.
    store
        .link_official(
            &actor,
            &all,
            by_code("150207.BYXL.KY")?,
            former,
            Validity::new(day(2022, 1, 1), Some(day(2025, 1, 1)))?,
        )
        .await?;
    for (person, codes) in officials {
        for code in codes {
            store
                .link_official(
                    &actor,
                    &all,
                    by_code(code)?,
                    *person,
                    Validity::new(day(2025, 1, 1), None)?,
                )
                .await?;
        }
    }
    // The riders (新就业群体) of 九原区 as a sector point: high priority and, in the
    // demo, not yet linked, so the district view raises its warning.
    store
        .create_point(
            &actor,
            &all,
            &NewPoint {
                kind: PointKind::Sector,
                name: Some("九原区外卖骑手群体".into()),
                place_code: "150207".into(),
                org_code: None,
                sector: Some("外卖骑手".into()),
                indicators: PointIndicators::new(85, 75, 80)?,
            },
        )
        .await?;
    Ok(())
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid date")
}

const TOPICS: &[(&str, &str)] = &[
    ("road_traffic", "村口道路坑洼，雨后积水，希望尽快修补"),
    ("elderly_care", "独居老人希望增加助餐点送餐次数"),
    ("environment", "垃圾清运不及时，夏天异味大"),
    ("utilities", "冬季供暖温度偏低，希望排查管网"),
    ("employment", "农闲时希望组织技能培训和用工对接"),
    ("health", "希望卫生室增加常用药品和巡诊次数"),
    ("education", "孩子上学路远，希望协调校车接送"),
    ("housing", "老旧楼道照明损坏，夜间出行不便"),
    ("public_safety", "路口缺少减速带和警示标志"),
    ("other", "希望增设便民服务点，方便办理社保业务"),
];

/// This year's visits and the demands they collected, once.
pub async fn ensure_visits(state: &AppState) -> Result<()> {
    let store = &state.store;
    if store.meta_get(LOADED_MARKER).await?.is_some() {
        return Ok(());
    }
    let actor = Actor::system("demo");
    let all = DataScope::everything();
    let today = lianxin_domain::calendar::local_day(state.desk.now());
    let year_start = day(today.year(), 1, 1);
    let span = (today - year_start).num_days().max(1);
    let mut rng = StdRng::seed_from_u64(2_025_117);
    // The 17 officials and the points they hold now.
    let mut holders: Vec<(i64, i64)> = Vec::new();
    for p in store.points(&all).await? {
        for l in store.point_links(p.id).await? {
            if l.valid_to.is_none() {
                holders.push((l.person_id, p.id));
            }
        }
    }
    holders.sort();
    if holders.is_empty() {
        // A demo database made before contact points existed: its officials' points
        // are plain relations. Say how to get the full demo rather than fail.
        println!(
            "This demo database predates contact points: delete ./data/demo and run `lianxin demo` again to load them."
        );
        return Ok(());
    }
    let staff = StepBy {
        actor: "system:demo".into(),
        name: "示例工作人员".into(),
        units: None,
    };
    let clock = &state.desk.clock;
    // Every official visits at least once; the rest are spread at random. Dates are
    // sorted so the replayed clock only moves forward within each visit.
    let officials: Vec<i64> = {
        let mut o: Vec<i64> = holders.iter().map(|h| h.0).collect();
        o.dedup();
        o
    };
    let mut plan: Vec<(NaiveDate, i64, i64)> = Vec::with_capacity(VISITS);
    for i in 0..VISITS {
        let person = if i < officials.len() {
            officials[i]
        } else {
            officials[rng.gen_range(0..officials.len())]
        };
        let theirs: Vec<i64> = holders
            .iter()
            .filter(|h| h.0 == person)
            .map(|h| h.1)
            .collect();
        let point = theirs[rng.gen_range(0..theirs.len())];
        let date = year_start + Duration::days(rng.gen_range(0..span));
        plan.push((date, person, point));
    }
    plan.sort();
    // 104 demands over 117 visits: most visits bring one, a few two, some none.
    let mut per_visit = vec![1usize; VISITS];
    for _ in 0..(VISITS - DEMANDS + 12) {
        let i = rng.gen_range(0..VISITS);
        per_visit[i] = 0;
    }
    let mut total: usize = per_visit.iter().sum();
    while total < DEMANDS {
        let i = rng.gen_range(0..VISITS);
        if per_visit[i] < 2 {
            per_visit[i] += 1;
            total += 1;
        }
    }
    while total > DEMANDS {
        let i = rng.gen_range(0..VISITS);
        if per_visit[i] > 0 {
            per_visit[i] -= 1;
            total -= 1;
        }
    }
    for (i, (date, person, point)) in plan.iter().enumerate() {
        let kind = [
            VisitKind::Household,
            VisitKind::Forum,
            VisitKind::Inspection,
        ][i % 3];
        let follow_up = (i % 9 == 0).then(|| "两周内回访，了解诉求办理进展".to_string());
        let visit = store
            .record_visit(
                &actor,
                &all,
                &NewVisit {
                    point_id: Some(*point),
                    person_id: *person,
                    kind,
                    visited_on: *date,
                    place_code: None,
                    participants: vec!["村（社区）党组织书记".into(), "网格员".into()],
                    notes: "走访了解群众急难愁盼，现场收集诉求并交办。".into(),
                    follow_up,
                    photos: Vec::new(),
                },
                today,
            )
            .await
            .with_context(|| format!("demo visit {}", i + 1))?;
        let place_code = {
            let p = store.point(*point, &all).await?;
            store.place(p.place_id, &all).await?.code
        };
        for k in 0..per_visit[i] {
            // Received mid-morning on the visit day (Beijing time).
            let received = Utc
                .with_ymd_and_hms(date.year(), date.month(), date.day(), 2, 30, 0)
                .single()
                .context("visit time")?
                + Duration::minutes(20 * k as i64);
            let back = state.desk.now() - received;
            clock.advance(-back);
            let mut moved = Duration::zero();
            let (category, text) = TOPICS[(i * 3 + k) % TOPICS.len()];
            let submitted = state
                .desk
                .submit(
                    Intake {
                        kind: "help".into(),
                        category: category.into(),
                        channel: "visit".into(),
                        description: text.into(),
                        place_code: Some(place_code.clone()),
                        visit_id: Some(visit.id),
                        ..Intake::default()
                    },
                    &Submitter {
                        actor: "system:demo".into(),
                        name: "走访收集（示例）".into(),
                        account_id: None,
                    },
                )
                .await
                .with_context(|| format!("demand of demo visit {}", i + 1))?;
            let id = submitted.id;
            // Older demands have gone round the loop; the last weeks' are still open.
            let age = (today - *date).num_days();
            if age > 10 {
                for (hours, action) in [
                    (
                        2,
                        Action::Assess {
                            urgency: None,
                            category: None,
                            deadline: None,
                            note: Some("已核实情况".into()),
                        },
                    ),
                    (
                        1,
                        Action::Assign {
                            unit: submitted.owner_id,
                            deadline: None,
                            note: None,
                        },
                    ),
                    (
                        rng.gen_range(4..30),
                        Action::Start {
                            note: Some("已到现场查看".into()),
                        },
                    ),
                    (
                        rng.gen_range(10..120),
                        Action::Answer {
                            text: "已协调有关单位办理，情况已向群众反馈。".into(),
                        },
                    ),
                ] {
                    clock.advance(Duration::hours(hours));
                    moved += Duration::hours(hours);
                    state.desk.act(id, staff.clone(), action).await?;
                }
            }
            clock.advance(back - moved);
        }
    }
    store
        .meta_set(LOADED_MARKER, &lianxin_store::now_text())
        .await?;
    Ok(())
}
