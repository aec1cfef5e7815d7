//! The generated organisation: products, teams, people, pipelines.

use chrono::{DateTime, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    pub seed: u64,
    /// Number of teams.
    pub teams: usize,
    /// Days of history, ending at `end`.
    pub days: u32,
    /// Valid builds per day (before duplicates and malformed messages).
    pub builds_per_day: u32,
    /// The end of the workload (exclusive); the last day is `[end - 1 day, end)`.
    pub end: DateTime<Utc>,
    /// Share of extra messages that are malformed (every reject reason occurs).
    pub invalid_ratio: f64,
    /// Share of extra messages that re-send an earlier event (same `event_id`).
    pub duplicate_ratio: f64,
    /// Whether business requests and deployments come with the builds (spec section 12):
    /// requests referenced by branches and change titles, production deployments of merged
    /// commits, some repositories never deployed, some requests never delivered.
    pub deliveries: bool,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 42,
            teams: 60,
            days: 28,
            builds_per_day: 2_000,
            end: Utc
                .with_ymd_and_hms(2026, 11, 2, 0, 0, 0)
                .single()
                .unwrap_or_default(),
            invalid_ratio: 0.0,
            duplicate_ratio: 0.0,
            deliveries: true,
        }
    }
}

/// One generated team.
#[derive(Debug, Clone)]
pub struct TeamSpec {
    /// As spelled in events (sometimes with capitals or spaces; ingest normalises).
    pub name: String,
    pub product: String,
    pub developers: u32,
    pub peer_group: Option<String>,
    /// Whether the teams file lists it.
    pub listed: bool,
    /// Builds per developer relative to a typical team (planted teams are far off 1).
    pub spend_factor: f64,
    pub planted: Option<&'static str>,
    pub authors: Vec<String>,
    pub pipelines: Vec<String>,
    pub repositories: Vec<String>,
    pub source: &'static str,
    pub toolchain: usize,
}

impl TeamSpec {
    /// The normalised name (trimmed, lower-case), as stored.
    pub fn key(&self) -> String {
        self.name.trim().to_lowercase()
    }
}

const PRODUCTS: &[&str] = &[
    "checkout",
    "payments",
    "search",
    "identity",
    "logistics",
    "mobile",
    "data-platform",
    "ml-platform",
    "catalog",
    "notifications",
    "billing",
    "storefront",
];
const TEAM_WORDS: &[&str] = &[
    "falcons", "otters", "lynx", "orcas", "badgers", "herons", "foxes", "wolves", "bison",
    "cranes", "geckos", "ibis", "koalas", "lemurs", "moose", "newts", "owls", "pandas", "quokkas",
    "ravens", "seals", "tapirs", "urchins", "vipers", "yaks", "zebras",
];
const FIRST: &[&str] = &[
    "ana", "ben", "chloe", "david", "elif", "farid", "greta", "hugo", "ines", "jonas", "kemal",
    "lena", "marco", "nora", "omar", "paula", "quentin", "rosa", "sven", "tara", "umut", "vera",
    "wim", "xenia", "yusuf", "zoe",
];
const LAST: &[&str] = &[
    "meyer", "schmidt", "rossi", "dubois", "novak", "jansen", "silva", "kowalski", "nielsen",
    "garcia", "yilmaz", "berg", "costa", "fischer", "moreau", "horvat",
];
pub(crate) const SOURCES: &[&str] = &["jenkins", "gitlab", "github", "tekton"];

pub(crate) fn build_org(config: &GeneratorConfig) -> Vec<TeamSpec> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x6f72_6721);
    let n_products = (config.teams / 7).clamp(1, PRODUCTS.len());
    let sizes = LogNormal::new(2.0_f64, 0.6).unwrap_or_else(|_| unreachable!());
    let mut teams = Vec::with_capacity(config.teams);
    for i in 0..config.teams {
        // Products get teams unevenly: the last product has only a few (too few peers).
        let product = if i % 11 == 10 && n_products > 1 {
            PRODUCTS[n_products - 1]
        } else {
            PRODUCTS[i % (n_products.saturating_sub(1)).max(1)]
        };
        let word = TEAM_WORDS[i % TEAM_WORDS.len()];
        let base = if i < TEAM_WORDS.len() {
            word.to_owned()
        } else {
            format!("{word}-{}", i / TEAM_WORDS.len() + 1)
        };
        let name = match i % 9 {
            3 => format!("{}-{}", product.to_uppercase(), base),
            5 => format!(" {product}-{base} "),
            _ => format!("{product}-{base}"),
        };
        let developers = (sizes.sample(&mut rng).round() as u32).clamp(1, 45);
        let planted = match i % 17 {
            4 => Some("over"),
            12 => Some("under"),
            _ => None,
        };
        let spend_factor = match planted {
            Some("over") => 5.0,
            Some(_) => 0.2,
            None => rng.random_range(0.75..1.3),
        };
        let authors = (0..developers)
            .map(|d| {
                let f = FIRST[(i * 7 + d as usize) % FIRST.len()];
                let l = LAST[(i * 3 + d as usize * 5) % LAST.len()];
                format!(
                    "{f}.{l}{}@acme.example",
                    if d > 0 { d.to_string() } else { String::new() }
                )
            })
            .collect();
        let pipelines = (0..rng.random_range(2..6))
            .map(|p| {
                format!(
                    "{base}-{}",
                    ["build", "test", "deploy", "nightly", "release", "lint"][p % 6]
                )
            })
            .collect();
        let repositories = (0..rng.random_range(1..4))
            .map(|r| format!("acme/{base}-svc{r}"))
            .collect();
        teams.push(TeamSpec {
            listed: i % 4 != 1,
            peer_group: (i % 13 == 6).then(|| "mobile-apps".to_owned()),
            name,
            product: product.to_owned(),
            developers,
            spend_factor,
            planted,
            authors,
            pipelines,
            repositories,
            source: SOURCES[i % SOURCES.len()],
            toolchain: rng.random_range(0..crate::model::TOOLCHAINS),
        });
    }
    teams
}
