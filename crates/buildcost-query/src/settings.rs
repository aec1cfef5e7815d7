//! What the query layer needs from the configuration, and the teams file.

use std::path::Path;

use buildcost_model::config::{PricingConfig, PrivacyConfig};

use crate::config::BaselineConfig;

use crate::{Error, Result};

/// One row of the teams file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamEntry {
    /// Trimmed, lower-cased (as teams are in events).
    pub team: String,
    /// Trimmed, lower-cased.
    pub product: String,
    pub developers: u32,
    /// `None` when the column is empty.
    pub peer_group: Option<String>,
}

/// The teams file: `team,product,developers,peer_group` (`peer_group` may be empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeamsFile {
    pub entries: Vec<TeamEntry>,
}

impl TeamsFile {
    /// Reads and checks a teams file.
    ///
    /// # Errors
    /// The file cannot be read, has the wrong header, a bad row (named by line), or lists a
    /// team twice.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::TeamsFile {
            path: path.into(),
            message: e.to_string(),
        })?;
        Self::parse(&text).map_err(|message| Error::TeamsFile {
            path: path.into(),
            message,
        })
    }

    /// Parses a teams file's text; the error names the line.
    ///
    /// # Errors
    /// See [`TeamsFile::load`].
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(text.as_bytes());
        let header = reader.headers().map_err(|e| e.to_string())?.clone();
        let expected = ["team", "product", "developers", "peer_group"];
        if header.iter().collect::<Vec<_>>() != expected
            && header.iter().collect::<Vec<_>>() != expected[..3]
        {
            return Err(format!(
                "the header must be `team,product,developers,peer_group`, not `{}`",
                header.iter().collect::<Vec<_>>().join(",")
            ));
        }
        let mut entries: Vec<TeamEntry> = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| e.to_string())?;
            let line = record.position().map_or(0, |p| p.line());
            let field = |i: usize| record.get(i).unwrap_or("").trim();
            let team = field(0).to_lowercase();
            let product = field(1).to_lowercase();
            if team.is_empty() && product.is_empty() && field(2).is_empty() {
                continue;
            }
            if team.is_empty() {
                return Err(format!("line {line}: `team` is empty"));
            }
            if product.is_empty() {
                return Err(format!("line {line}: `product` is empty for team `{team}`"));
            }
            let developers: u32 = field(2).parse().map_err(|_| {
                format!(
                    "line {line}: `developers` must be a whole number ≥ 0, not `{}`",
                    field(2)
                )
            })?;
            let peer_group = Some(field(3).to_lowercase()).filter(|g| !g.is_empty());
            if entries.iter().any(|e| e.team == team) {
                return Err(format!("line {line}: team `{team}` is listed twice"));
            }
            entries.push(TeamEntry {
                team,
                product,
                developers,
                peer_group,
            });
        }
        Ok(TeamsFile { entries })
    }
}

/// Everything the figures depend on besides the stored builds.
#[derive(Debug, Clone)]
pub struct QuerySettings {
    pub pricing: PricingConfig,
    pub baseline: BaselineConfig,
    /// Teams with fewer developers appear only inside the merged `_small_teams` row.
    pub min_team_size: u32,
    pub teams: TeamsFile,
    /// `[delivery]`: production environments, orphan repositories, team lead times.
    pub delivery: buildcost_model::DeliveryConfig,
}

/// The configuration's defaults, privacy included: teams below `privacy.min_team_size`'s
/// default (5) are merged, as `buildcost` does with no configuration file.
impl Default for QuerySettings {
    fn default() -> Self {
        QuerySettings {
            pricing: PricingConfig::default(),
            baseline: BaselineConfig::default(),
            min_team_size: PrivacyConfig::default().min_team_size,
            teams: TeamsFile::default(),
            delivery: buildcost_model::DeliveryConfig::default(),
        }
    }
}

impl QuerySettings {
    /// How far back a snapshot at an instant reads builds: the 28-day window, or the baseline
    /// window when it is longer.
    pub fn history(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.baseline.window_days).max(28))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_settings_merge_small_teams_as_the_binary_does_without_a_configuration() {
        let defaults = QuerySettings::default();
        assert_eq!(
            defaults.min_team_size,
            PrivacyConfig::default().min_team_size
        );
        assert!(
            defaults.min_team_size >= 1,
            "a library user gets privacy too"
        );
    }

    #[test]
    fn parses_and_normalises() {
        let t = TeamsFile::parse(
            "team,product,developers,peer_group\n Payments ,Checkout,12,\nsearch-a,search,3,web\n",
        )
        .unwrap();
        assert_eq!(
            t.entries,
            vec![
                TeamEntry {
                    team: "payments".into(),
                    product: "checkout".into(),
                    developers: 12,
                    peer_group: None
                },
                TeamEntry {
                    team: "search-a".into(),
                    product: "search".into(),
                    developers: 3,
                    peer_group: Some("web".into())
                },
            ]
        );
        // The peer_group column may be left out entirely.
        assert_eq!(
            TeamsFile::parse("team,product,developers\na,b,1\n")
                .unwrap()
                .entries
                .len(),
            1
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = TeamsFile::parse("team,product,developers,peer_group\na,b,1,\nc,d,many,\n")
            .unwrap_err();
        assert!(e.contains("line 3") && e.contains("developers"), "{e}");
        let e =
            TeamsFile::parse("team,product,developers,peer_group\na,b,1,\nA,b,2,\n").unwrap_err();
        assert!(e.contains("listed twice"), "{e}");
        let e = TeamsFile::parse("name,product,size\n").unwrap_err();
        assert!(e.contains("header"), "{e}");
    }
}
