//! `lianxin`: the one binary. It serves the platform (`serve`, `demo`), manages the
//! database (`migrate`, `backup`, `audit verify`), accounts (`admin`) and bulk data
//! (`import`). Each subcommand maps its flags onto [`config::Config`] and calls the
//! store or the server crate; no rule lives here.

mod bench;
mod config;
mod demo;
mod gate_box;
mod import;
mod import_map;
mod serve;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use config::{Config, Flags};
use lianxin_domain::pii::PiiKey;
use lianxin_domain::role::Role;
use lianxin_store::audit::{Actor, Verification};
use lianxin_store::Store;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "lianxin",
    version,
    about = "连心 Lianxin: grassroots governance and services for the new employment groups"
)]
struct Cli {
    /// Configuration file (TOML); ./lianxin.toml is read when present.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://…
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run with the demo world on an embedded database (created on first run).
    Demo {
        #[arg(long)]
        listen: Option<String>,
        #[arg(long, default_value = "./data/demo")]
        data_dir: PathBuf,
    },
    /// Serve the web app and the API.
    Serve {
        #[arg(long)]
        listen: Option<String>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Bring the database schema up to date.
    Migrate,
    /// Accounts and API tokens.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Import places, organisations, people, demands or households in grids from CSV or
    /// XLSX (all rows or none).
    Import {
        #[arg(value_enum)]
        kind: import::Kind,
        file: PathBuf,
    },
    /// Write a consistent copy of the (SQLite) database to FILE while it runs.
    Backup { file: PathBuf },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The offline gate box: syncs the signed trust and revocation lists, checks
    /// rider passes locally (even with the network down), journals signed entry and
    /// exit events in DATA and uploads them when the server is back
    /// (docs/operations.md, "The offline gate box").
    Gate {
        /// The server's base URL, e.g. http://10.0.0.1:8080.
        #[arg(long)]
        server: String,
        /// The gate's API token (scope gate:scan).
        #[arg(long, env = "LIANXIN_GATE_TOKEN")]
        token: String,
        /// The compound's id, as in the tickets (the gate's compound_id).
        #[arg(long)]
        compound: u64,
        /// Where the box keeps its lists, key, replay records and journal.
        #[arg(long)]
        data: PathBuf,
        /// Refuse every scan once the last successful sync is older than this (seconds).
        #[arg(long, default_value_t = 3600)]
        max_offline: u64,
        /// Pin the issuer's public key (64 hex); without it the first sync trusts the
        /// server's answer (trust on first use).
        #[arg(long)]
        issuer_key: Option<String>,
        /// The local API for the gate page and the scanner (POST /scan).
        #[arg(long, default_value = "127.0.0.1:8091")]
        listen: String,
    },
    /// Measure this machine: each figure beside its baseline (docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a login account. The password is read from LIANXIN_NEW_PASSWORD or stdin.
    CreateUser {
        username: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        name: Option<String>,
        /// Place code the account is limited to (its subtree).
        #[arg(long)]
        scope_place: Option<String>,
        /// Organisation code the account is limited to (its subtree).
        #[arg(long)]
        scope_org: Option<String>,
    },
    /// Create an API token for an account; prints the secret once.
    CreateToken {
        username: String,
        #[arg(long)]
        name: String,
        /// Scopes: registry:read, registry:write, audit:read, demands:read, demands:write,
        /// open311, admin.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// RFC 3339 expiry time.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// Set a new password (from LIANXIN_NEW_PASSWORD or stdin); ends the account's sessions.
    SetPassword { username: String },
    /// Disable an account: it can no longer log in, and its sessions and tokens stop working.
    DisableUser { username: String },
    /// Re-enable a disabled account.
    EnableUser { username: String },
    /// Revoke an API token by its id.
    RevokeToken { id: i64 },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; names the first broken link.
    Verify,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).map_err(|e| e.message)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<std::process::ExitCode> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut flags = Flags {
        database_url: cli.database_url.clone(),
        ..Default::default()
    };
    match cli.command {
        Command::Demo { listen, data_dir } => {
            flags.listen = listen;
            flags.database_url = Some(format!(
                "sqlite://{}",
                data_dir.join("lianxin.db").display()
            ));
            flags.data_dir = Some(data_dir);
            // The demo is self-contained: no file or environment may point it elsewhere.
            let config = Config::load(
                None,
                |k| {
                    if k == "LIANXIN_LOG_FORMAT" || k == "LIANXIN_LOG_LEVEL" {
                        env(k)
                    } else {
                        None
                    }
                },
                &flags,
            )?;
            serve::init_logging(&config);
            serve::run(config, true).await?;
        }
        Command::Gate {
            server,
            token,
            compound,
            data,
            max_offline,
            issuer_key,
            listen,
        } => {
            let config = Config::load(cli.config.as_deref(), env, &flags)?;
            serve::init_logging(&config);
            let issuer_key = issuer_key
                .as_deref()
                .map(gate_box::parse_issuer_key)
                .transpose()?;
            gate_box::run(
                gate_box::BoxConfig {
                    server,
                    token,
                    compound,
                    dir: data,
                    max_offline,
                    issuer_key,
                },
                &listen,
            )
            .await?;
        }
        Command::Serve { listen, data_dir } => {
            flags.listen = listen;
            flags.data_dir = data_dir;
            let config = Config::load(cli.config.as_deref(), env, &flags)?;
            serve::init_logging(&config);
            serve::run(config, false).await?;
        }
        Command::Migrate => {
            let config = Config::load(cli.config.as_deref(), env, &flags)?;
            let store = Store::connect(&config.database_url).await?;
            let applied = store.migrate().await?;
            if applied.is_empty() {
                println!("schema is up to date");
            } else {
                for m in applied {
                    println!("applied {m}");
                }
            }
        }
        Command::Admin { command } => {
            let config = Config::load(cli.config.as_deref(), env, &flags)?;
            let store = Store::open(&config.database_url).await?;
            admin(&store, command).await?;
        }
        Command::Import { kind, file } => {
            let config = Config::load(cli.config.as_deref(), env, &flags)?;
            let store = Store::open(&config.database_url).await?;
            let n = import::run(&store, || secret_key(&config, false), kind, &file).await?;
            println!("imported {n} {} from {}", kind.noun(), file.display());
        }
        Command::Backup { file } => {
            let config = Config::load(cli.config.as_deref(), env, &flags)?;
            let store = Store::connect(&config.database_url).await?;
            store.backup_to(&file).await?;
            println!("wrote a consistent copy to {}", file.display());
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let config = Config::load(cli.config.as_deref(), env, &flags)?;
            let store = Store::connect(&config.database_url).await?;
            match store.audit_verify().await? {
                Verification::Intact { entries } => {
                    println!("audit trail intact: {entries} entries verified")
                }
                Verification::Broken(b) => {
                    println!("audit trail BROKEN at entry {}: {}", b.seq, b.reason);
                    return Ok(std::process::ExitCode::from(2));
                }
            }
        }
        Command::Bench { command } => bench::run(command).await?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn admin(store: &Store, command: AdminCommand) -> Result<()> {
    let actor = Actor::system("cli");
    let account_id = |username: String| async move {
        store
            .account_by_username(&username)
            .await?
            .map(|(a, _)| a.id)
            .with_context(|| format!("no account named {username}"))
    };
    match command {
        AdminCommand::SetPassword { username } => {
            let hash = new_password_hash()?;
            store
                .set_password(&actor, account_id(username.clone()).await?, &hash)
                .await?;
            println!("password of {username} changed; its sessions have ended");
        }
        AdminCommand::DisableUser { username } => {
            store
                .set_disabled(&actor, account_id(username.clone()).await?, true)
                .await?;
            println!("{username} is disabled");
        }
        AdminCommand::EnableUser { username } => {
            store
                .set_disabled(&actor, account_id(username.clone()).await?, false)
                .await?;
            println!("{username} is enabled");
        }
        AdminCommand::RevokeToken { id } => {
            let t = store.revoke_api_token(&actor, id).await?;
            println!("token {} ({}) revoked", t.id, t.name);
        }
        AdminCommand::CreateUser {
            username,
            role,
            name,
            scope_place,
            scope_org,
        } => {
            let hash = new_password_hash()?;
            let account = store
                .create_account(
                    &actor,
                    &lianxin_store::accounts::NewAccount {
                        display_name: name.unwrap_or_else(|| username.clone()),
                        username,
                        password_hash: hash,
                        role,
                        scope_place_code: scope_place,
                        scope_org_code: scope_org,
                        person_id: None,
                    },
                )
                .await?;
            println!(
                "created account {} ({}) with id {}",
                account.username,
                account.role.as_str(),
                account.id
            );
        }
        AdminCommand::CreateToken {
            username,
            name,
            scopes,
            expires_at,
        } => {
            let (account, _) = store
                .account_by_username(&username)
                .await?
                .with_context(|| format!("no account named {username}"))?;
            let (token, t) = lianxin_server::api::issue_token(
                store,
                &actor,
                &name,
                account.id,
                &scopes,
                expires_at.as_deref(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", e.field.unwrap_or_default(), e.message))?;
            println!(
                "token {} for {} (scopes: {}):",
                t.id,
                account.username,
                t.scopes.join(" ")
            );
            println!("{token}");
            eprintln!("This is the only time the token is shown; store it safely.");
        }
    }
    Ok(())
}

/// Reads a new password from LIANXIN_NEW_PASSWORD or stdin, checks it, hashes it.
fn new_password_hash() -> Result<String> {
    let password = match std::env::var("LIANXIN_NEW_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            eprintln!("password (read from stdin):");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    lianxin_server::auth::check_new_password(&password).map_err(|e| anyhow::anyhow!(e.message))?;
    lianxin_server::auth::hash_password(&password).map_err(|e| anyhow::anyhow!(e.message))
}

/// The master key for personal data: from the configuration, or from the key file.
/// Only the server creates the file (readable by the owner only), on its first start
/// on SQLite; other commands refuse to run without the key the server uses, because
/// data protected under a fresh key could never be read by that server.
pub fn secret_key(config: &Config, create: bool) -> Result<PiiKey> {
    if let Some(hex) = &config.secret_key {
        return PiiKey::from_hex(hex).context("secret_key");
    }
    let path = config.key_file();
    if path.exists() {
        let hex = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return PiiKey::from_hex(&hex).with_context(|| format!("the key in {}", path.display()));
    }
    if !create {
        bail!(
            "no secret key at {}: set LIANXIN_SECRET_KEY or secret_key_file to the key the server uses",
            path.display()
        );
    }
    if !config.database_url.starts_with("sqlite:") {
        bail!(
            "no secret key: set LIANXIN_SECRET_KEY (64 hex characters) or secret_key_file; \
             a production database must never get a new key by accident"
        );
    }
    write_new_key(&path)
}

fn write_new_key(path: &Path) -> Result<PiiKey> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let hex = PiiKey::generate_hex();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(hex.as_bytes())?;
    f.sync_all()?;
    eprintln!("created a new secret key in {} — back it up: without it, protected personal data cannot be read", path.display());
    PiiKey::from_hex(&hex).map_err(Into::into)
}
