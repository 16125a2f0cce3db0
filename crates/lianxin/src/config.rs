//! Configuration: one struct, filled from defaults, then a TOML file, then
//! `LIANXIN_*` environment variables, then command-line flags (each layer overrides
//! the one before). It is printed at start with secrets masked.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: String,
    pub database_url: String,
    pub data_dir: PathBuf,
    /// 64 hex characters; protects personal data and signs CSRF tokens.
    pub secret_key: Option<String>,
    /// Where the secret key is kept when `secret_key` is not given.
    pub secret_key_file: Option<PathBuf>,
    /// The address users reach the site at; `https://…` turns on Secure cookies.
    pub public_url: Option<String>,
    pub trust_proxy: bool,
    pub session_hours: i64,
    pub log_format: String,
    pub log_level: String,
    /// A map tile server (`https://…/{z}/{x}/{y}.png`) where a deployment has one;
    /// without it the map draws outlines and markers on a plain background.
    pub map_tile_url: Option<String>,
    pub map_tile_attribution: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://./data/lianxin.db".into(),
            data_dir: PathBuf::from("./data"),
            secret_key: None,
            secret_key_file: None,
            public_url: None,
            trust_proxy: false,
            session_hours: 12,
            log_format: "text".into(),
            log_level: "info".into(),
            map_tile_url: None,
            map_tile_attribution: None,
        }
    }
}

/// The file layer: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    listen: Option<String>,
    database_url: Option<String>,
    data_dir: Option<PathBuf>,
    secret_key: Option<String>,
    secret_key_file: Option<PathBuf>,
    public_url: Option<String>,
    trust_proxy: Option<bool>,
    session_hours: Option<i64>,
    log_format: Option<String>,
    log_level: Option<String>,
    map_tile_url: Option<String>,
    map_tile_attribution: Option<String>,
}

/// Overrides given on the command line.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Builds the configuration from all layers. `file` is the `--config` path; without
    /// it, `./lianxin.toml` is read if present.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: &Flags,
    ) -> Result<Config> {
        let mut c = Config::default();
        let path = file.map(Path::to_path_buf).or_else(|| {
            let p = PathBuf::from("lianxin.toml");
            p.exists().then_some(p)
        });
        if let Some(path) = path {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let layer: Layer =
                toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
            c.apply(layer);
        }
        let parse_bool = |k: &str| -> Result<Option<bool>> {
            match env(k).as_deref() {
                None => Ok(None),
                Some("1" | "true" | "yes") => Ok(Some(true)),
                Some("0" | "false" | "no") => Ok(Some(false)),
                Some(_) => bail!("{k} must be true or false"),
            }
        };
        let session_hours = match env("LIANXIN_SESSION_HOURS") {
            Some(v) => Some(
                v.parse()
                    .context("LIANXIN_SESSION_HOURS must be a whole number")?,
            ),
            None => None,
        };
        c.apply(Layer {
            listen: env("LIANXIN_LISTEN"),
            database_url: env("LIANXIN_DATABASE_URL"),
            data_dir: env("LIANXIN_DATA_DIR").map(PathBuf::from),
            secret_key: env("LIANXIN_SECRET_KEY"),
            secret_key_file: env("LIANXIN_SECRET_KEY_FILE").map(PathBuf::from),
            public_url: env("LIANXIN_PUBLIC_URL"),
            trust_proxy: parse_bool("LIANXIN_TRUST_PROXY")?,
            session_hours,
            log_format: env("LIANXIN_LOG_FORMAT"),
            log_level: env("LIANXIN_LOG_LEVEL"),
            map_tile_url: env("LIANXIN_MAP_TILE_URL"),
            map_tile_attribution: env("LIANXIN_MAP_TILE_ATTRIBUTION"),
        });
        if let Some(v) = &flags.listen {
            c.listen = v.clone();
        }
        if let Some(v) = &flags.data_dir {
            c.data_dir = v.clone();
        }
        if let Some(v) = &flags.database_url {
            c.database_url = v.clone();
        }
        c.validate()?;
        Ok(c)
    }

    fn apply(&mut self, l: Layer) {
        macro_rules! take {
            ($($f:ident),*) => { $( if let Some(v) = l.$f { self.$f = v; } )* };
        }
        take!(
            listen,
            database_url,
            data_dir,
            trust_proxy,
            session_hours,
            log_format,
            log_level
        );
        if l.secret_key.is_some() {
            self.secret_key = l.secret_key;
        }
        if l.secret_key_file.is_some() {
            self.secret_key_file = l.secret_key_file;
        }
        if l.public_url.is_some() {
            self.public_url = l.public_url;
        }
        if l.map_tile_url.is_some() {
            self.map_tile_url = l.map_tile_url;
        }
        if l.map_tile_attribution.is_some() {
            self.map_tile_attribution = l.map_tile_attribution;
        }
    }

    fn validate(&self) -> Result<()> {
        self.listen
            .parse::<std::net::SocketAddr>()
            .with_context(|| format!("listen address {:?} is not host:port", self.listen))?;
        lianxin_store::Engine::from_url(&self.database_url).map_err(|e| anyhow::anyhow!("{e}"))?;
        if !(1..=24 * 30).contains(&self.session_hours) {
            bail!("session_hours must be between 1 and 720");
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            bail!("log_format must be text or json");
        }
        if let Some(url) = &self.map_tile_url {
            if !(url.starts_with("https://") || url.starts_with("http://") || url.starts_with('/'))
                || !["{z}", "{x}", "{y}"].iter().all(|p| url.contains(p))
            {
                bail!("map_tile_url must be an http(s) or site-relative URL with {{z}}, {{x}} and {{y}}");
            }
        }
        Ok(())
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    pub fn key_file(&self) -> PathBuf {
        self.secret_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"))
    }

    /// The configuration as printed at start: secrets and passwords masked.
    pub fn describe(&self) -> String {
        format!(
            "listen = {}\ndatabase_url = {}\ndata_dir = {}\nsecret_key = {}\nsecret_key_file = {}\npublic_url = {}\ntrust_proxy = {}\nsession_hours = {}\nlog = {} ({})\nmap_tile_url = {}",
            self.listen,
            mask_url_password(&self.database_url),
            self.data_dir.display(),
            if self.secret_key.is_some() { "******** (set)" } else { "(from file)" },
            if self.secret_key.is_some() { "(not used)".to_string() } else { self.key_file().display().to_string() },
            self.public_url.as_deref().unwrap_or("(none)"),
            self.trust_proxy,
            self.session_hours,
            self.log_level,
            self.log_format,
            self.map_tile_url.as_deref().unwrap_or("(none: outlines and markers only)"),
        )
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:****@host/db`.
pub fn mask_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let Some(at) = rest.find('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:****{}",
            &url[..scheme_end],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn layers_override_in_order() {
        let dir = std::env::temp_dir().join(format!("lx-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\nsession_hours = 8\nlog_level = \"debug\"\n",
        )
        .unwrap();
        let env: HashMap<&str, &str> = [
            ("LIANXIN_LISTEN", "127.0.0.1:9001"),
            ("LIANXIN_SESSION_HOURS", "4"),
        ]
        .into();
        let get = |k: &str| env.get(k).map(|v| v.to_string());
        let c = Config::load(Some(&file), get, &Flags::default()).unwrap();
        assert_eq!(
            (c.listen.as_str(), c.session_hours, c.log_level.as_str()),
            ("127.0.0.1:9001", 4, "debug")
        );
        let flags = Flags {
            listen: Some("127.0.0.1:9002".into()),
            ..Default::default()
        };
        let c = Config::load(Some(&file), get, &flags).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9002");
        std::fs::write(&file, "bogus = 1\n").unwrap();
        assert!(Config::load(Some(&file), |_| None, &Flags::default()).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_values_are_refused_and_secrets_masked() {
        let flags = Flags {
            listen: Some("nonsense".into()),
            ..Default::default()
        };
        assert!(Config::load(None, |_| None, &flags).is_err());
        let env = |k: &str| (k == "LIANXIN_SECRET_KEY").then(|| "ab".repeat(32));
        let flags = Flags {
            database_url: Some("postgres://u:hunter2@h/db".into()),
            ..Default::default()
        };
        let c = Config::load(None, env, &flags).unwrap();
        let text = c.describe();
        assert!(!text.contains("hunter2") && !text.contains(&"ab".repeat(32)));
        assert!(text.contains("postgres://u:****@h/db"));
    }
}
