//! Finding, reading and checking the configuration file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use buildcost_model::config::Config;

/// Where the configuration came from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    Defaults,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::File(p) => write!(f, "{}", p.display()),
            ConfigSource::Defaults => f.write_str("built-in defaults"),
        }
    }
}

/// Loads the configuration: `--config`, else `$BUILDCOST_CONFIG`, else `./buildcost.toml`,
/// else built-in defaults. Relative paths in a file are relative to the file's folder.
///
/// # Errors
/// A named file is missing, or the file is invalid; the message names the key.
pub fn load(explicit: Option<&Path>) -> Result<(Config, ConfigSource)> {
    let from_env = std::env::var_os("BUILDCOST_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let chosen = explicit.map(Path::to_path_buf).or(from_env);
    let path = match chosen {
        Some(p) => p,
        None => {
            let local = PathBuf::from("buildcost.toml");
            if !local.exists() {
                let config = Config::default();
                config.validate()?;
                return Ok((config, ConfigSource::Defaults));
            }
            local
        }
    };
    let config = load_file(&path)?;
    Ok((config, ConfigSource::File(path)))
}

/// Reads, resolves and validates one configuration file.
///
/// # Errors
/// As [`load`].
pub fn load_file(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration file `{}`", path.display()))?;
    let mut config = Config::from_toml(&text)
        .with_context(|| format!("invalid configuration file `{}`", path.display()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    config.resolve_paths(base);
    config
        .validate()
        .with_context(|| format!("invalid configuration file `{}`", path.display()))?;
    Ok(config)
}
