//! The binary, driven as an operator drives it: real processes, real signals.
//!
//! - crash safety: SIGKILL the server while clients write; every write it
//!   acknowledged is there after a restart, and the audit chain is intact;
//! - graceful shutdown on SIGTERM;
//! - `import` applies all rows or none and names the first bad row;
//! - `audit verify` names the first tampered entry;
//! - `backup` copies a live database;
//! - the server's log never carries a phone number it was sent.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lianxin");
const KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";

struct Dir(PathBuf);
impl Dir {
    fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!(
            "lianxin-cli-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    fn db(&self) -> String {
        format!("sqlite://{}", self.0.join("lx.db").display())
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lianxin(dir: &Dir, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("LIANXIN_DATABASE_URL", dir.db())
        .env("LIANXIN_SECRET_KEY", KEY)
        .env("LIANXIN_NEW_PASSWORD", "operator-password")
        .current_dir(&dir.0)
        .output()
        .unwrap()
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

fn start_server(dir: &Dir, port: u16) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("LIANXIN_DATABASE_URL", dir.db())
        .env("LIANXIN_SECRET_KEY", KEY)
        .env("LIANXIN_LOG_LEVEL", "debug")
        .current_dir(&dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Server { child, base, log };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not start: {}", log.lock().unwrap());
}

/// A failed test must not leave its server running.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn setup_admin(dir: &Dir) -> String {
    ok(lianxin(dir, &["migrate"]));
    ok(lianxin(
        dir,
        &[
            "admin",
            "create-user",
            "ops",
            "--role",
            "admin",
            "--name",
            "Operator",
        ],
    ));
    let out = ok(lianxin(
        dir,
        &[
            "admin",
            "create-token",
            "ops",
            "--name",
            "writer",
            "--scope",
            "registry:write",
            "--scope",
            "audit:read",
        ],
    ));
    out.lines().last().unwrap().trim().to_string()
}

fn import_base_places(dir: &Dir) {
    let csv = dir.0.join("base.csv");
    std::fs::write(
        &csv,
        "code,name,level,parent_code\n150000,内蒙古自治区,region,\n150200,包头市,city,150000\n150207,九原区,county,150200\n150207.BYXL,白音席勒街道,town,150207\n",
    )
    .unwrap();
    let out = ok(lianxin(dir, &["import", "places", csv.to_str().unwrap()]));
    assert!(out.contains("imported 4 places"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_loses_no_acknowledged_write() {
    let dir = Dir::new("crash");
    let token = setup_admin(&dir);
    import_base_places(&dir);
    let port = free_port();
    let mut server = start_server(&dir, port);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = vec![];
    for w in 0..8 {
        let (acked, stop, base, token) = (
            acked.clone(),
            stop.clone(),
            server.base.clone(),
            token.clone(),
        );
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let code = format!("150207.BYXL.W{w}N{i}");
                i += 1;
                let r = client
                    .post(format!("{base}/api/v1/places"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"code": code, "name": format!("写入{w}-{i}"), "level": "village", "parent_code": "150207.BYXL"}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => acked.lock().unwrap().push(code),
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    // Let the writers run, then kill the server mid-stream without warning.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 50,
        "only {} writes were acknowledged before the kill",
        acked.len()
    );
    println!("{} writes acknowledged before SIGKILL", acked.len());

    // Restart and look for every acknowledged write.
    let server = start_server(&dir, free_port());
    let client = reqwest::Client::new();
    let street: serde_json::Value = client
        .get(format!(
            "{}/api/v1/places?q=150207.BYXL.W&limit=500",
            server.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let present: std::collections::HashSet<String> = street["places"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_string())
        .collect();
    let missing: Vec<&String> = acked.iter().filter(|c| !present.contains(*c)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost: {missing:?}",
        missing.len()
    );
    let verify: serde_json::Value = client
        .get(format!("{}/api/v1/audit/verify", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verify["intact"], true, "{verify}");
    stop_gracefully(server);
}

fn stop_gracefully(mut server: Server) -> String {
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("stopped cleanly"), "{log}");
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_no_personal_data() {
    let dir = Dir::new("logs");
    let token = setup_admin(&dir);
    import_base_places(&dir);
    let server = start_server(&dir, free_port());
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/api/v1/people", server.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "日志测试", "phone": "13712345678", "id_card": "11010519491231002X", "place_code": "150207.BYXL"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // A bad phone must not be echoed either.
    let r = client
        .post(format!("{}/api/v1/people", server.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "x", "phone": "1371234567", "place_code": "150207.BYXL"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(!r.text().await.unwrap().contains("1371234567"));
    let log = stop_gracefully(server);
    assert!(log.contains("request"), "the access log is written: {log}");
    for secret in [
        "13712345678",
        "1371234567",
        "11010519491231002X",
        "****5678",
    ] {
        assert!(!log.contains(secret), "the log contains {secret}");
    }
    // Nor does the database file hold the raw numbers.
    let db = std::fs::read(dir.0.join("lx.db")).unwrap();
    let wal = std::fs::read(dir.0.join("lx.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        let hay = String::from_utf8_lossy(bytes);
        assert!(!hay.contains("13712345678") && !hay.contains("11010519491231002X"));
    }
}

#[test]
fn import_is_all_or_nothing_and_names_the_row() {
    let dir = Dir::new("import");
    ok(lianxin(&dir, &["migrate"]));
    import_base_places(&dir);
    let csv = dir.0.join("people.csv");
    std::fs::write(
        &csv,
        "\u{feff}name,phone,party_member,place_code\n张三,13812345678,是,150207.BYXL\n李四,,否,150207.BYXL\n王五,,否,150207.NOPE\n",
    )
    .unwrap();
    let out = lianxin(&dir, &["import", "people", csv.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("row 4") && err.contains("nothing was imported"),
        "{err}"
    );
    // Fix the row and the whole file goes in.
    std::fs::write(&csv, "name,phone,party_member,place_code\n张三,13812345678,是,150207.BYXL\n李四,,否,150207.BYXL\n王五,,否,150207\n").unwrap();
    assert!(
        ok(lianxin(&dir, &["import", "people", csv.to_str().unwrap()]))
            .contains("imported 3 people")
    );
    // A bad value is caught before the database is touched, with its row.
    std::fs::write(&csv, "name,phone,place_code\n赵六,12345,150207\n").unwrap();
    let out = lianxin(&dir, &["import", "people", csv.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("row 2: phone") && !err.contains("12345,"),
        "{err}"
    );
    // Unknown file types are refused.
    let out = lianxin(&dir, &["import", "places", "x.txt"]);
    assert!(!out.status.success());
}

#[test]
fn households_import_into_grids_all_or_nothing() {
    let dir = Dir::new("households");
    ok(lianxin(&dir, &["migrate"]));
    import_base_places(&dir);
    let places = dir.0.join("grid.csv");
    std::fs::write(
        &places,
        "code,name,level,parent_code\n150207.BYXL.KY,开元社区,village,150207.BYXL\n\
         150207.BYXL.KY.G1,第一网格,grid,150207.BYXL.KY\n150207.BYXL.KY.G2,第二网格,grid,150207.BYXL.KY\n\
         150207.BYXL.KY.G1.B1,1号楼,building,150207.BYXL.KY.G1\n\
         150207.BYXL.KY.G1.B1.H1,101,household,150207.BYXL.KY.G1.B1\n\
         150207.BYXL.KY.G1.B1.H2,102,household,150207.BYXL.KY.G1.B1\n",
    )
    .unwrap();
    ok(lianxin(
        &dir,
        &["import", "places", places.to_str().unwrap()],
    ));
    // Row 4 puts H1 in a second grid while it is in the first: nothing goes in.
    let csv = dir.0.join("households.csv");
    std::fs::write(
        &csv,
        "household_code,grid_code,valid_from\n150207.BYXL.KY.G1.B1.H1,150207.BYXL.KY.G1,2025-01-01\n\
         150207.BYXL.KY.G1.B1.H2,150207.BYXL.KY.G1,2025-01-01\n150207.BYXL.KY.G1.B1.H1,150207.BYXL.KY.G2,2025-06-01\n",
    )
    .unwrap();
    let out = lianxin(&dir, &["import", "households", csv.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("row 4")
            && err.contains("another grid")
            && err.contains("nothing was imported"),
        "{err}"
    );
    // A malformed date is caught before the database, with its row.
    std::fs::write(
        &csv,
        "household_code,grid_code,valid_from\n150207.BYXL.KY.G1.B1.H1,150207.BYXL.KY.G1,2025/01/01\n",
    )
    .unwrap();
    let err = lianxin(&dir, &["import", "households", csv.to_str().unwrap()]).stderr;
    assert!(String::from_utf8_lossy(&err).contains("row 2: valid_from"));
    std::fs::write(
        &csv,
        "household_code,grid_code,valid_from\n150207.BYXL.KY.G1.B1.H1,150207.BYXL.KY.G1,2025-01-01\n\
         150207.BYXL.KY.G1.B1.H2,150207.BYXL.KY.G1,2025-01-01\n",
    )
    .unwrap();
    let out = ok(lianxin(
        &dir,
        &["import", "households", csv.to_str().unwrap()],
    ));
    assert!(out.contains("imported 2 household assignments"), "{out}");
}

#[test]
fn audit_verify_names_the_tampered_entry_and_backup_copies() {
    let dir = Dir::new("audit");
    setup_admin(&dir);
    import_base_places(&dir);
    let out = ok(lianxin(&dir, &["audit", "verify"]));
    assert!(out.contains("intact"), "{out}");
    let backup = dir.0.join("copy.db");
    ok(lianxin(&dir, &["backup", backup.to_str().unwrap()]));
    assert!(
        !lianxin(&dir, &["backup", backup.to_str().unwrap()])
            .status
            .success(),
        "never overwrites"
    );
    tamper(&dir.0.join("lx.db"));
    let out = lianxin(&dir, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("BROKEN at entry 4"), "{text}");
    // The backup, taken before the tampering, still verifies.
    let out = Command::new(BIN)
        .args([
            "audit",
            "verify",
            "--database-url",
            &format!("sqlite://{}", backup.display()),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact"));
}

/// Edits the 4th audit entry the way an intruder with file access would.
fn tamper(db: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        sqlx::raw_sql("DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'account:999' WHERE seq = 4;")
            .execute(&mut c)
            .await
            .unwrap();
    });
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let dir = Dir::new("config");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "not-an-address"])
        .current_dir(&dir.0)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen address"));
    let out = Command::new(BIN)
        .args(["migrate", "--database-url", "mysql://x"])
        .current_dir(&dir.0)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("sqlite:// or postgres://"));
}

#[test]
fn xlsx_imports_like_csv() {
    let dir = Dir::new("xlsx");
    ok(lianxin(&dir, &["migrate"]));
    import_base_places(&dir);
    let path = dir.0.join("orgs.xlsx");
    let write = |rows: &[[&str; 5]]| {
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                ws.write_string(r as u32, c as u16, *cell).unwrap();
            }
        }
        wb.save(&path).unwrap();
    };
    write(&[
        ["code", "name", "kind", "parent_code", "serves"],
        ["JY-QW", "九原区委", "party_committee", "", "150207"],
        [
            "BYXL-DGW",
            "白音席勒街道党工委",
            "party_committee",
            "JY-QW",
            "150207.BYXL",
        ],
        ["BAD", "坏行", "branch", "NOPE", "150207"],
    ]);
    let out = lianxin(&dir, &["import", "orgs", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("row 4"), "{err}");
    write(&[
        ["code", "name", "kind", "parent_code", "serves"],
        ["JY-QW", "九原区委", "party_committee", "", "150207"],
        [
            "BYXL-DGW",
            "白音席勒街道党工委",
            "party_committee",
            "JY-QW",
            "150207.BYXL",
        ],
        ["", "", "", "", ""],
    ]);
    assert!(
        ok(lianxin(&dir, &["import", "orgs", path.to_str().unwrap()]))
            .contains("imported 2 organisations")
    );
}

#[test]
fn import_rows_are_numbered_as_in_the_file_and_need_the_servers_key() {
    let dir = Dir::new("rows");
    ok(lianxin(&dir, &["migrate"]));
    import_base_places(&dir);
    // Blank rows 2 and 3 are skipped; the unknown parent is on row 5.
    let csv = dir.0.join("places.csv");
    std::fs::write(&csv, "code,name,level,parent_code\n,,,\n,,,\n150207.SH,沙河街道,town,150207\n150207.X.Y,坏,village,150207.X\n").unwrap();
    let out = lianxin(&dir, &["import", "places", csv.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("row 5:"), "{err}");
    // Without the server's key, people cannot be imported (and no new key is made).
    let people = dir.0.join("people.csv");
    std::fs::write(&people, "name,place_code\n张三,150207\n").unwrap();
    let out = Command::new(BIN)
        .args(["import", "people", people.to_str().unwrap()])
        .env("LIANXIN_DATABASE_URL", dir.db())
        .current_dir(&dir.0)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no secret key"));
    assert!(!dir.0.join("data/secret.key").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_manage_accounts_and_tokens() {
    let dir = Dir::new("admin");
    let token = setup_admin(&dir);
    let server = start_server(&dir, free_port());
    let client = reqwest::Client::new();
    let get = || {
        client
            .get(format!("{}/api/v1/me", server.base))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 200);
    ok(lianxin(&dir, &["admin", "disable-user", "ops"]));
    assert_eq!(
        get().await.unwrap().status(),
        401,
        "a disabled account's tokens stop working"
    );
    ok(lianxin(&dir, &["admin", "enable-user", "ops"]));
    assert_eq!(get().await.unwrap().status(), 200);
    ok(lianxin(&dir, &["admin", "set-password", "ops"]));
    ok(lianxin(&dir, &["admin", "revoke-token", "1"]));
    assert_eq!(get().await.unwrap().status(), 401);
    assert!(
        !lianxin(&dir, &["admin", "revoke-token", "1"])
            .status
            .success(),
        "already revoked"
    );
    assert!(!lianxin(&dir, &["admin", "disable-user", "nobody"])
        .status
        .success());
    stop_gracefully(server);
}

/// Points are money: an award the server acknowledged survives SIGKILL (every one is
/// found again as a replay after the restart), and `lianxin import awards` applies a
/// file whole or not at all, naming the row of the first problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn awards_survive_sigkill_and_import_all_or_nothing() {
    let dir = Dir::new("awards");
    ok(lianxin(&dir, &["migrate"]));
    ok(lianxin(
        &dir,
        &[
            "admin",
            "create-user",
            "ops",
            "--role",
            "admin",
            "--name",
            "Operator",
        ],
    ));
    let out = ok(lianxin(
        &dir,
        &[
            "admin",
            "create-token",
            "ops",
            "--name",
            "points",
            "--scope",
            "admin",
            "--scope",
            "rewards:write",
            "--scope",
            "registry:read",
        ],
    ));
    let token = out.lines().last().unwrap().trim().to_string();
    import_base_places(&dir);
    let orgs = dir.0.join("orgs.csv");
    std::fs::write(
        &orgs,
        "code,name,kind\nXJY,新就业群体党委,party_committee\n",
    )
    .unwrap();
    ok(lianxin(&dir, &["import", "orgs", orgs.to_str().unwrap()]));
    let people = dir.0.join("people.csv");
    std::fs::write(&people, "name,place_code\n骑手甲,150207\n骑手乙,150207\n").unwrap();
    ok(lianxin(
        &dir,
        &["import", "people", people.to_str().unwrap()],
    ));

    let mut server = start_server(&dir, free_port());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let base = server.base.clone();
    let org: serde_json::Value = client
        .get(format!("{base}/api/v1/orgs"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org = org["orgs"][0]["id"].as_i64().unwrap();
    let r = client
        .post(format!("{base}/api/v1/rewards/rules"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"code": "volunteer_hour", "category": "rider", "points": 1, "valid_from": "2020-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let acked = Arc::new(Mutex::new(Vec::<serde_json::Value>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = vec![];
    for w in 0..8 {
        let (acked, stop, base, token, client) = (
            acked.clone(),
            stop.clone(),
            base.clone(),
            token.clone(),
            client.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let award = serde_json::json!({"event_ref": format!("w{w}:{i}"), "person_id": 1 + i % 2,
                    "org_id": org, "rule": "volunteer_hour", "at": "2026-01-05T08:00:00Z"});
                i += 1;
                match client
                    .post(format!("{base}/api/v1/rewards/awards"))
                    .bearer_auth(&token)
                    .json(&award)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 201 => acked.lock().unwrap().push(award),
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => break,
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 50,
        "only {} awards acknowledged",
        acked.len()
    );

    // After the restart, every acknowledged award is already there: sent again, each
    // is a replay and nothing new is awarded.
    let server = start_server(&dir, free_port());
    let r: serde_json::Value = client
        .post(format!("{}/api/v1/rewards/awards/batch", server.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "awards": acked }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["imported"]["awarded"], 0, "{r}");
    assert_eq!(r["imported"]["replayed"], acked.len(), "{r}");
    let ledger: serde_json::Value = client
        .get(format!("{}/api/v1/rewards/ledger", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let points = &ledger["totals"][0];
    assert_eq!(points["debits"], points["credits"]);
    assert_eq!(points["balances"], 0);
    assert!(points["credits"].as_i64().unwrap() >= acked.len() as i64);
    stop_gracefully(server);

    // The CLI import: row 3 names an unknown person, so nothing goes in.
    let csv = dir.0.join("awards.csv");
    std::fs::write(
        &csv,
        format!("event_ref,person_id,org_id,rule,quality,at\nimp:1,1,{org},volunteer_hour,good,2026-02-01T09:00:00+08:00\nimp:2,99,{org},volunteer_hour,,2026-02-02T09:00:00+08:00\n"),
    )
    .unwrap();
    let before = points["credits"].as_i64().unwrap();
    let out = lianxin(&dir, &["import", "awards", csv.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("row 3") && err.contains("person_id"),
        "{err}"
    );
    std::fs::write(
        &csv,
        format!("event_ref,person_id,org_id,rule,quality,at\nimp:1,1,{org},volunteer_hour,good,2026-02-01T09:00:00+08:00\nimp:2,2,{org},volunteer_hour,bad,2026-02-02T09:00:00+08:00\n"),
    )
    .unwrap();
    let err = lianxin(&dir, &["import", "awards", csv.to_str().unwrap()]).stderr;
    assert!(
        String::from_utf8_lossy(&err).contains("row 3: quality"),
        "{}",
        String::from_utf8_lossy(&err)
    );
    std::fs::write(
        &csv,
        format!("event_ref,person_id,org_id,rule,quality,at\nimp:1,1,{org},volunteer_hour,good,2026-02-01T09:00:00+08:00\nimp:2,2,{org},volunteer_hour,,2026-02-02T09:00:00+08:00\n"),
    )
    .unwrap();
    let out = ok(lianxin(&dir, &["import", "awards", csv.to_str().unwrap()]));
    assert!(
        out.contains("2 new awards (2 points), 0 already recorded"),
        "{out}"
    );
    // Again: both already recorded.
    let out = ok(lianxin(&dir, &["import", "awards", csv.to_str().unwrap()]));
    assert!(
        out.contains("0 new awards (0 points), 2 already recorded"),
        "{out}"
    );
    let server = start_server(&dir, free_port());
    let ledger: serde_json::Value = client
        .get(format!("{}/api/v1/rewards/ledger", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ledger["totals"][0]["credits"].as_i64().unwrap(), before + 2);
    stop_gracefully(server);
}
