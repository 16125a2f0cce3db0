//! The demo world: the places, organisations and officials of the source article
//! (`demo/world.toml`), plus generated households and people, clearly fictional,
//! and one login per role. Loaded once; a second run finds the marker and reuses it.

use anyhow::{bail, Context, Result};
use lianxin_domain::draft::*;
use lianxin_domain::person::IdCardNumber;
use lianxin_domain::pii::PiiKey;
use lianxin_domain::role::{DataScope, Role};
use lianxin_store::accounts::NewAccount;
use lianxin_store::audit::Actor;
use lianxin_store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

pub mod community;
pub mod contact;
pub mod demands;
pub mod gate;
pub mod map;
pub mod points;
pub mod tiers;

pub const DEMO_PASSWORD: &str = "lianxin-demo";
const LOADED_MARKER: &str = "demo_world_loaded";

/// One demo login per role.
pub struct DemoLogin {
    pub username: &'static str,
    pub display_name: &'static str,
    pub role: Role,
    pub scope_place: Option<&'static str>,
    pub scope_org: Option<&'static str>,
    /// The scope as printed at start.
    pub scope_label: &'static str,
}

const fn login(
    username: &'static str,
    display_name: &'static str,
    role: Role,
    scope_place: Option<&'static str>,
    scope_org: Option<&'static str>,
    scope_label: &'static str,
) -> DemoLogin {
    DemoLogin {
        username,
        display_name,
        role,
        scope_place,
        scope_org,
        scope_label,
    }
}

pub const DEMO_LOGINS: &[DemoLogin] = &[
    login(
        "admin",
        "系统管理员",
        Role::Admin,
        None,
        None,
        "内蒙古自治区 (all)",
    ),
    login(
        "jy.official",
        "九原区领导（示例）",
        Role::Official,
        Some("150207"),
        None,
        "九原区",
    ),
    login(
        "ky.worker",
        "开元社区工作者（示例）",
        Role::CommunityWorker,
        Some("150207.BYXL.KY"),
        None,
        "开元社区",
    ),
    login(
        "ky.grid1",
        "第一网格网格员（示例）",
        Role::GridWorker,
        Some("150207.BYXL.KY.G01"),
        None,
        "开元社区第一网格",
    ),
    login(
        "unit.staff",
        "组织部工作人员（示例）",
        Role::UnitStaff,
        None,
        Some("JY-ZZB"),
        "九原区委组织部",
    ),
    login(
        "resident",
        "开元社区居民（示例）",
        Role::Resident,
        Some("150207.BYXL.KY"),
        None,
        "—",
    ),
    login("rider", "外卖骑手（示例）", Role::Rider, None, None, "—"),
    login(
        "gate",
        "开元社区骑手道闸（示例）",
        Role::GateDevice,
        Some("150207.BYXL.KY"),
        None,
        "—",
    ),
];

const WORLD: &str = include_str!("demo/world.toml");

#[derive(Deserialize)]
struct World {
    place: Vec<WorldPlace>,
    org: Vec<WorldOrg>,
    official: Vec<WorldOfficial>,
}

#[derive(Deserialize)]
struct WorldPlace {
    code: String,
    name: String,
    level: String,
    parent: String,
    lat: Option<f64>,
    lon: Option<f64>,
}

#[derive(Deserialize)]
struct WorldOrg {
    code: String,
    name: String,
    kind: String,
    parent: String,
    serves: Vec<String>,
}

#[derive(Deserialize)]
struct WorldOfficial {
    name: String,
    post: String,
    org: String,
    points: Vec<String>,
}

fn nonempty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Loads the demo world unless it is already there.
pub async fn ensure_loaded(store: &Store, key: &PiiKey) -> Result<()> {
    if store.meta_get(LOADED_MARKER).await?.is_some() {
        println!("Reusing the demo world already in the database.");
        return Ok(());
    }
    let started = std::time::Instant::now();
    load(store, key).await?;
    tiers::load(store)
        .await
        .context("loading the demo's organisation tiers")?;
    community::load(store)
        .await
        .context("loading the demo's grids and 双进 registrations")?;
    store
        .meta_set(LOADED_MARKER, &lianxin_store::now_text())
        .await?;
    println!(
        "Loaded the demo world in {} ms.",
        started.elapsed().as_millis()
    );
    Ok(())
}

async fn load(store: &Store, key: &PiiKey) -> Result<()> {
    let world: World = toml::from_str(WORLD).context("demo/world.toml")?;
    let actor = Actor::system("demo");
    let all = DataScope::everything();
    let mut rng = StdRng::seed_from_u64(20251121);

    // Places from the article, then generated households under every building.
    let mut places = world
        .place
        .iter()
        .map(|p| {
            PlaceDraft::parse(&RawPlace {
                code: p.code.clone(),
                name: p.name.clone(),
                level: p.level.clone(),
                parent_code: nonempty(&p.parent),
                lat: p.lat,
                lon: p.lon,
            })
            .with_context(|| format!("place {}", p.code))
        })
        .collect::<Result<Vec<_>>>()?;
    let buildings: Vec<(String, String)> = world
        .place
        .iter()
        .filter(|p| p.level == "building")
        .map(|p| (p.code.clone(), p.name.clone()))
        .collect();
    let mut households = Vec::new();
    for (code, name) in &buildings {
        for unit in 1..=2 {
            for floor in 1..=6 {
                let seg = format!("H{unit}{floor:02}1");
                let hh = PlaceDraft::parse(&RawPlace {
                    code: format!("{code}.{seg}"),
                    name: format!("{name}{unit}单元{floor}01室"),
                    level: "household".into(),
                    parent_code: Some(code.clone()),
                    lat: None,
                    lon: None,
                })?;
                households.push(hh.code.to_string());
                places.push(hh);
            }
        }
    }
    store
        .import_places(&actor, &places, |_| {})
        .await
        .context("loading demo places")?;

    let orgs = world
        .org
        .iter()
        .map(|o| {
            OrgDraft::parse(&RawOrg {
                code: o.code.clone(),
                name: o.name.clone(),
                kind: o.kind.clone(),
                parent_code: nonempty(&o.parent),
                serves: o.serves.clone(),
            })
            .with_context(|| format!("org {}", o.code))
        })
        .collect::<Result<Vec<_>>>()?;
    store
        .import_orgs(&actor, &orgs, |_| {})
        .await
        .context("loading demo organisations")?;

    // Residents: households in the communities with buildings, and people registered
    // at every village or community.
    let villages: Vec<&WorldPlace> = world
        .place
        .iter()
        .filter(|p| p.level == "village")
        .collect();
    let mut people = Vec::new();
    for hh in &households {
        for _ in 0..rng.gen_range(1..=3) {
            people.push(fake_person(&mut rng, key, hh)?);
        }
    }
    for v in &villages {
        for _ in 0..rng.gen_range(60..=140) {
            people.push(fake_person(&mut rng, key, &v.code)?);
        }
    }
    store
        .import_people(&actor, &people, |_| {})
        .await
        .context("generating demo people")?;

    // The 17 county-level officials of 九原区, their posts and contact points.
    if world.official.len() != 17 {
        bail!("demo/world.toml must list the 17 officials of 九原区");
    }
    let mut official_ids = Vec::new();
    let mut official_points = Vec::new();
    for o in &world.official {
        let person = store
            .create_person(
                &actor,
                &all,
                &PersonDraft::parse(
                    &RawPerson {
                        name: o.name.clone(),
                        party_member: Some(true),
                        party_joined: Some(format!("{}-07-01", rng.gen_range(1990..2005))),
                        place_code: "150207".into(),
                        ..Default::default()
                    },
                    key,
                )?,
            )
            .await?;
        relate(
            store,
            &actor,
            person.id,
            "holds_post",
            Some(&o.org),
            None,
            Some(&o.post),
            "2024-01-01",
            None,
        )
        .await?;
        official_ids.push(person.id);
        official_points.push((person.id, o.points.clone()));
    }
    // A predecessor who changed post: 开元社区's link before 2025, kept as history.
    let former = store
        .create_person(
            &actor,
            &all,
            &PersonDraft::parse(
                &RawPerson {
                    name: "钱卫东".into(),
                    party_member: Some(true),
                    place_code: "150207".into(),
                    ..Default::default()
                },
                key,
            )?,
        )
        .await?;
    relate(
        store,
        &actor,
        former.id,
        "holds_post",
        Some("JY-QW"),
        None,
        Some("区委常委（已调任）"),
        "2021-06-01",
        Some("2025-01-01"),
    )
    .await?;
    // Their contact points, with the predecessor's link kept as history.
    contact::load_points(store, &official_points, former.id).await?;

    // Workers for the community and the grid logins.
    let worker = staff(
        store,
        key,
        &actor,
        "开元社区网格长（示例）",
        "150207.BYXL.KY",
    )
    .await?;
    relate(
        store,
        &actor,
        worker,
        "assigned_to",
        None,
        Some("150207.BYXL.KY"),
        None,
        "2024-03-01",
        None,
    )
    .await?;
    let grid = staff(
        store,
        key,
        &actor,
        "第一网格网格员（示例）",
        "150207.BYXL.KY.G01",
    )
    .await?;
    relate(
        store,
        &actor,
        grid,
        "assigned_to",
        None,
        Some("150207.BYXL.KY.G01"),
        None,
        "2024-03-01",
        None,
    )
    .await?;

    // Party members join the branch or committee that serves their village.
    let party_orgs: Vec<(&str, &str)> = world
        .org
        .iter()
        .filter(|o| {
            matches!(
                o.kind.as_str(),
                "branch" | "party_committee" | "general_branch"
            )
        })
        .flat_map(|o| o.serves.iter().map(move |s| (s.as_str(), o.code.as_str())))
        .collect();
    for v in &villages {
        let Some((_, org)) = party_orgs.iter().find(|(place, _)| *place == v.code) else {
            continue;
        };
        let place = store.place_by_code(&v.code).await?.context("village")?;
        let members = store
            .search_people(
                "",
                None,
                &DataScope {
                    place_path: Some(place.path.clone()),
                    org_path: None,
                },
                500,
                0,
            )
            .await?;
        for m in members.iter().filter(|m| m.party_member).take(30) {
            relate(
                store,
                &actor,
                m.id,
                "member_of",
                Some(org),
                None,
                None,
                "2020-01-01",
                None,
            )
            .await?;
        }
    }

    // The `rider` login is a delivery rider registered in 东胜区 (its points account
    // is `person:{id}`, see demo/points.rs).
    let rider = staff(store, key, &actor, "李明", "150602").await?;

    // One login per role.
    let hash = lianxin_server::auth::hash_password(DEMO_PASSWORD)
        .map_err(|e| anyhow::anyhow!(e.message))?;
    for l in DEMO_LOGINS {
        let person_id = match l.username {
            "jy.official" => official_ids.first().copied(),
            "ky.worker" => Some(worker),
            "ky.grid1" => Some(grid),
            "rider" => Some(rider),
            _ => None,
        };
        store
            .create_account(
                &actor,
                &NewAccount {
                    username: l.username.into(),
                    display_name: l.display_name.into(),
                    password_hash: hash.clone(),
                    role: l.role,
                    scope_place_code: l.scope_place.map(Into::into),
                    scope_org_code: l.scope_org.map(Into::into),
                    person_id,
                },
            )
            .await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn relate(
    store: &Store,
    actor: &Actor,
    person: i64,
    kind: &str,
    org: Option<&str>,
    place: Option<&str>,
    post: Option<&str>,
    from: &str,
    to: Option<&str>,
) -> Result<()> {
    let draft = RelationDraft::parse(&RawRelation {
        kind: kind.into(),
        org_code: org.map(Into::into),
        place_code: place.map(Into::into),
        post: post.map(Into::into),
        valid_from: from.into(),
        valid_to: to.map(Into::into),
    })?;
    store
        .create_relation(actor, &DataScope::everything(), person, &draft)
        .await
        .with_context(|| format!("relation {kind} {org:?} {place:?}"))?;
    Ok(())
}

async fn staff(store: &Store, key: &PiiKey, actor: &Actor, name: &str, place: &str) -> Result<i64> {
    let d = PersonDraft::parse(
        &RawPerson {
            name: name.into(),
            place_code: place.into(),
            ..Default::default()
        },
        key,
    )?;
    Ok(store
        .create_person(actor, &DataScope::everything(), &d)
        .await?
        .id)
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林",
    "何", "郭", "马", "罗", "梁", "宋", "郑", "谢", "韩", "唐", "冯", "于", "董", "萧", "程", "曹",
    "袁", "邓", "许", "傅", "沈", "曾", "彭", "吕", "苏", "卢", "蒋", "蔡", "贾", "丁", "魏", "薛",
    "叶", "阎", "乌", "宝", "包", "敖", "白", "那", "巴", "其",
];
const GIVEN: &[&str] = &[
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "霞",
    "平",
    "刚",
    "桂英",
    "建华",
    "文",
    "华",
    "红",
    "玉兰",
    "志强",
    "海",
    "斌",
    "鑫",
    "宇",
    "浩",
    "凯",
    "晨",
    "欣",
    "婷",
    "雪",
    "琳",
    "巴特尔",
    "乌云",
    "其其格",
    "那仁",
    "额尔敦",
    "萨仁",
    "苏和",
    "图雅",
    "阿拉坦",
    "宝音",
];

/// A fictional resident. Phone and ID numbers are random (protected like real ones).
fn fake_person(rng: &mut StdRng, key: &PiiKey, place_code: &str) -> Result<PersonDraft> {
    let name = format!(
        "{}{}",
        SURNAMES[rng.gen_range(0..SURNAMES.len())],
        GIVEN[rng.gen_range(0..GIVEN.len())]
    );
    let phone = rng.gen_bool(0.7).then(|| {
        format!(
            "1{}{:09}",
            rng.gen_range(3..=9),
            rng.gen_range(0..1_000_000_000u64)
        )
    });
    let id_card = if rng.gen_bool(0.4) {
        let first17 = format!(
            "{}{}{:02}{:02}{:03}",
            &place_code[..6],
            rng.gen_range(1950..2006),
            rng.gen_range(1..=12),
            rng.gen_range(1..=28),
            rng.gen_range(0..1000)
        );
        IdCardNumber::check_char(&first17).map(|c| format!("{first17}{c}"))
    } else {
        None
    };
    let party = rng.gen_bool(0.18);
    let joined = party.then(|| {
        format!(
            "{}-{:02}-01",
            rng.gen_range(1975..2024),
            rng.gen_range(1..=12)
        )
    });
    Ok(PersonDraft::parse(
        &RawPerson {
            name,
            phone,
            id_card,
            party_member: Some(party),
            party_joined: joined,
            place_code: place_code.into(),
        },
        key,
    )?)
}
