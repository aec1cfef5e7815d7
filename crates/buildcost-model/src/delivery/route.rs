//! `[[delivery.route]]`: where `buildcost report weekly --send` delivers a team's report or the
//! directors' summary (spec section 14).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// A secret: given as is (a webhook URL in the file), or read from a file or an environment
/// variable when it is used. Never logged, never recorded.
#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Secret {
    Value(String),
    File { file: PathBuf },
    Env { env: String },
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Value(_) => f.write_str("Secret(<hidden>)"),
            Secret::File { file } => write!(f, "Secret(file {})", file.display()),
            Secret::Env { env } => write!(f, "Secret(env {env})"),
        }
    }
}

impl Secret {
    /// The secret's text, trimmed; `key` names the setting in errors (never the value).
    ///
    /// # Errors
    /// The file cannot be read, the variable is unset, or the secret is empty.
    pub fn read(&self, key: &str) -> Result<String, ConfigError> {
        let text = match self {
            Secret::Value(v) => v.clone(),
            Secret::File { file } => std::fs::read_to_string(file).map_err(|e| {
                ConfigError::new(key, format!("cannot read `{}`: {e}", file.display()))
            })?,
            Secret::Env { env } => std::env::var(env).map_err(|_| {
                ConfigError::new(key, format!("the environment variable `{env}` is not set"))
            })?,
        };
        let text = text.trim().to_owned();
        if text.is_empty() {
            return Err(ConfigError::new(key, "is empty"));
        }
        Ok(text)
    }

    /// Makes a file path relative to `base`.
    pub fn resolve(&mut self, base: &std::path::Path) {
        if let Secret::File { file } = self {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
    }
}

/// Whether a webhook URL may be used: `https://`, or `http://` to a loopback host, or any
/// `http://` with `allow_http`. `key` names the setting in the error (never the URL: it is a
/// secret).
///
/// # Errors
/// Another scheme, or plain HTTP to another host without `allow_http`.
pub fn check_webhook_url(url: &str, allow_http: bool, key: &str) -> Result<(), ConfigError> {
    if url.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(ConfigError::new(key, "must be an https:// URL"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = if let Some(h) = host.strip_prefix('[') {
        h.split(']').next().unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback || allow_http {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            "is plain http:// to a host that is not loopback: use https://, or set delivery.allow_http = true",
        ))
    }
}

/// One `[[delivery.route]]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Route {
    /// The team whose report this route delivers; or `summary = true`.
    pub team: Option<String>,
    /// Delivers the directors' summary.
    pub summary: bool,
    /// E-mail addresses (mailing lists), over `[smtp]`.
    pub email: Vec<String>,
    /// A Microsoft Teams Workflows webhook URL.
    pub teams_webhook: Option<Secret>,
    /// Send the bare Adaptive Card instead of a `message` with `attachments` (for flows whose
    /// trigger expects the card itself).
    pub teams_bare_card: bool,
    /// A Slack incoming-webhook URL.
    pub slack_webhook: Option<Secret>,
}

impl Route {
    /// What the route delivers: `summary` or the team's name (trimmed, lower-cased).
    pub fn report(&self) -> String {
        match &self.team {
            Some(t) if !self.summary => t.trim().to_lowercase(),
            _ => "summary".to_owned(),
        }
    }

    /// Checks the route; `key` is `delivery.route[i]`.
    ///
    /// # Errors
    /// The first bad value, with its key.
    pub fn validate(&self, key: &str, allow_http: bool) -> Result<(), ConfigError> {
        match (&self.team, self.summary) {
            (Some(_), true) => {
                return Err(ConfigError::new(
                    key,
                    "names a team and summary = true: one route delivers one report",
                ))
            }
            (None, false) => {
                return Err(ConfigError::new(
                    key,
                    "needs `team = \"…\"` or `summary = true`",
                ))
            }
            (Some(t), false) if t.trim().is_empty() || t.trim() == "_small_teams" => {
                return Err(ConfigError::new(
                    format!("{key}.team"),
                    "must name a team of the teams file",
                ))
            }
            _ => {}
        }
        if self.email.is_empty() && self.teams_webhook.is_none() && self.slack_webhook.is_none() {
            return Err(ConfigError::new(
                key,
                "has no destination: give `email`, `teams_webhook` or `slack_webhook`",
            ));
        }
        for (i, address) in self.email.iter().enumerate() {
            let ok = address
                .split_once('@')
                .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
                && !address.contains(char::is_whitespace);
            if !ok {
                return Err(ConfigError::new(
                    format!("{key}.email[{i}]"),
                    format!("`{address}` is not an e-mail address"),
                ));
            }
        }
        for (name, secret) in [
            ("teams_webhook", &self.teams_webhook),
            ("slack_webhook", &self.slack_webhook),
        ] {
            if let Some(Secret::Value(url)) = secret {
                check_webhook_url(url, allow_http, &format!("{key}.{name}"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_https_or_loopback_http() {
        let ok = |u: &str, allow| check_webhook_url(u, allow, "k").is_ok();
        assert!(ok(
            "https://prod-01.westeurope.logic.azure.com/workflows/x",
            false
        ));
        assert!(ok("http://127.0.0.1:8080/hook", false));
        assert!(ok("http://localhost/hook", false));
        assert!(ok("http://[::1]:9/hook", false));
        assert!(!ok("http://hooks.example.com/x", false));
        assert!(ok("http://hooks.example.com/x", true));
        assert!(!ok("ftp://127.0.0.1/x", true));
        assert!(!ok("http://127.0.0.1.evil.example/x", false));
        let e = check_webhook_url("http://hooks.example.com/secret-token", false, "k")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret-token"), "the URL is a secret: {e}");
    }

    #[test]
    fn a_route_delivers_one_report_to_somewhere() {
        let route = |toml_text: &str| -> Route { toml::from_str(toml_text).unwrap() };
        let check = |r: &Route| r.validate("delivery.route[0]", false);
        assert!(check(&route(
            "team = \"Payments\"\nemail = [\"pay-ci@corp.example\"]"
        ))
        .is_ok());
        assert_eq!(route("team = \" Payments \"").report(), "payments");
        assert!(check(&route("summary = true\nslack_webhook = { env = \"X\" }")).is_ok());
        let e = check(&route("team = \"a\"\nsummary = true\nemail = [\"a@b.c\"]")).unwrap_err();
        assert_eq!(e.key, "delivery.route[0]");
        let e = check(&route("team = \"a\"")).unwrap_err();
        assert!(e.to_string().contains("no destination"), "{e}");
        let e = check(&route("team = \"a\"\nemail = [\"nobody\"]")).unwrap_err();
        assert_eq!(e.key, "delivery.route[0].email[0]");
        let e = check(&route(
            "team = \"a\"\nteams_webhook = \"http://x.example/y\"",
        ))
        .unwrap_err();
        assert_eq!(e.key, "delivery.route[0].teams_webhook");
        assert!(toml::from_str::<Route>("team = \"a\"\nteams_webhok = \"x\"").is_err());
        let r = route("team = \"a\"\nteams_webhook = { file = \"hook.url\" }");
        assert_eq!(
            r.teams_webhook,
            Some(Secret::File {
                file: "hook.url".into()
            })
        );
        assert!(!format!(
            "{:?}",
            route("team = \"a\"\nslack_webhook = \"https://hooks.slack.com/services/T/B/XYZ\"")
        )
        .contains("XYZ"));
    }
}
