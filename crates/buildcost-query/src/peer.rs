//! Team size, product and the peer baseline (spec section 7): the rules, written once. The
//! figures engine calls them over its totals; the `teams` and `baseline` SQL views call the
//! same functions, registered with DataFusion ([`crate::functions`]).

use std::collections::{BTreeMap, HashMap};

use crate::Baseline;

/// The peer group of every eligible team, whatever its own group: `_org`.
pub const ORG_GROUP: &str = "_org";

/// The size `N` of a team: the teams file's `developers` when the team is listed, else the
/// number of distinct authors of its builds in the baseline window.
pub fn team_size(listed_developers: Option<u32>, distinct_authors: u64) -> u64 {
    listed_developers.map_or(distinct_authors, u64::from)
}

/// An unlisted team's product: the one on most of its builds, ties to the alphabetically
/// smaller. `None` when there are no votes.
pub fn main_product<'a>(votes: impl IntoIterator<Item = (&'a str, u64)>) -> Option<&'a str> {
    votes
        .into_iter()
        .max_by(|(a, x), (b, y)| x.cmp(y).then_with(|| b.cmp(a)))
        .map(|(p, _)| p)
}

/// Whether a team gets a baseline: at least the minimum size, and it spent something.
pub fn eligible(developers: u64, cost: f64, min_team_size: u32) -> bool {
    developers >= u64::from(min_team_size) && cost > 0.0
}

/// `y = ln(C / N)`: the log of a team's cost per developer.
pub fn log_cost_per_developer(cost: f64, developers: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)] // team sizes are far below 2^53
    let n = developers as f64;
    (cost / n).ln()
}

/// The median: the middle value, or the mean of the two middle values of an even count
/// (NaN for none).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n.is_multiple_of(2) => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        _ => values[n / 2],
    }
}

/// The spread of a peer group from its median absolute deviation: `max(1.4826 · MAD, 0.05)`.
pub fn spread(mad: f64) -> f64 {
    (1.4826 * mad).max(0.05)
}

/// The centre `m` and spread `s` of a peer group's `y` values.
pub fn centre_and_spread(ys: &[f64]) -> (f64, f64) {
    let mut values = ys.to_vec();
    let m = median(&mut values);
    let mut deviations: Vec<f64> = ys.iter().map(|y| (y - m).abs()).collect();
    (m, spread(median(&mut deviations)))
}

/// `z = (y − m) / s`.
pub fn zscore(y: f64, m: f64, s: f64) -> f64 {
    (y - m) / s
}

/// `above` when `z > k`, `below` when `z < −k`, else `within`.
pub fn status(z: f64, k: f64) -> &'static str {
    if z > k {
        "above"
    } else if z < -k {
        "below"
    } else {
        "within"
    }
}

/// The expected cost `N · exp(m)` and the band `N · exp(m ∓ k·s)`: (expected, lower, upper).
pub fn band(developers: u64, m: f64, s: f64, k: f64) -> (f64, f64, f64) {
    #[allow(clippy::cast_precision_loss)]
    let n = developers as f64;
    (n * m.exp(), n * (m - k * s).exp(), n * (m + k * s).exp())
}

/// One team as the baseline reads it.
#[derive(Debug, Clone)]
pub struct TeamCost<'a> {
    pub team: &'a str,
    pub product: &'a str,
    /// The teams file's `peer_group`, if any.
    pub peer_group: Option<&'a str>,
    pub developers: u64,
    /// Cost over the baseline window.
    pub cost: f64,
}

/// Every eligible team's placement (spec section 7): a team's own group (its `peer_group`,
/// else its product) when that group has at least `min_peers` eligible teams, else `_org`.
pub fn place(
    teams: &[TeamCost<'_>],
    min_team_size: u32,
    min_peers: u32,
    k_sigma: f64,
) -> BTreeMap<String, Baseline> {
    let eligible: Vec<(&TeamCost<'_>, &str, f64)> = teams
        .iter()
        .filter(|t| eligible(t.developers, t.cost, min_team_size))
        .map(|t| {
            let group = t.peer_group.unwrap_or(t.product);
            (t, group, log_cost_per_developer(t.cost, t.developers))
        })
        .collect();
    let mut members: HashMap<&str, Vec<f64>> = HashMap::new();
    for (_, group, y) in &eligible {
        members.entry(group).or_default().push(*y);
        members.entry(ORG_GROUP).or_default().push(*y);
    }
    let centres: HashMap<&str, (f64, f64)> = members
        .iter()
        .map(|(group, ys)| (*group, centre_and_spread(ys)))
        .collect();
    let mut out = BTreeMap::new();
    for (t, group, y) in &eligible {
        // The org group counts every eligible team once; a team's own group only its members.
        let peers = members.get(group).map_or(0, Vec::len);
        let own = *group != ORG_GROUP && peers >= min_peers as usize;
        let peer_group = if own { *group } else { ORG_GROUP };
        let Some(&(m, s)) = centres.get(peer_group) else {
            continue; // cannot happen: every eligible team is a member of `_org`
        };
        let z = zscore(*y, m, s);
        let (expected, lower, upper) = band(t.developers, m, s, k_sigma);
        #[allow(clippy::cast_precision_loss)]
        let n = t.developers as f64;
        out.insert(
            t.team.to_owned(),
            Baseline {
                peer_group: peer_group.to_owned(),
                cost_per_developer_eur: t.cost / n,
                zscore: z,
                expected_eur: expected,
                lower_eur: lower,
                upper_eur: upper,
                status: status(z, k_sigma).to_owned(),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn the_main_product_is_the_most_voted_then_the_alphabetically_smaller() {
        assert_eq!(main_product([("b", 3), ("a", 3), ("c", 1)]), Some("a"));
        assert_eq!(main_product([("b", 4), ("a", 3)]), Some("b"));
        assert_eq!(main_product(std::iter::empty()), None);
    }

    #[test]
    fn the_spread_has_a_floor() {
        assert_eq!(spread(0.0), 0.05);
        assert!((spread(1.0) - 1.4826).abs() < 1e-12);
    }

    #[test]
    fn a_small_group_is_replaced_by_the_org() {
        let teams: Vec<TeamCost<'_>> = (0..6)
            .map(|i| TeamCost {
                team: ["a", "b", "c", "d", "e", "f"][i],
                product: if i < 5 { "big" } else { "lonely" },
                peer_group: None,
                developers: 10,
                cost: 100.0 * (i + 1) as f64,
            })
            .collect();
        let placed = place(&teams, 5, 5, 2.0);
        assert_eq!(placed["a"].peer_group, "big");
        assert_eq!(placed["f"].peer_group, ORG_GROUP);
        // `f` is placed against all six: y values ln(10..60), median between ln 30 and ln 40.
        let m = ((30.0f64).ln() + (40.0f64).ln()) / 2.0;
        assert!((placed["f"].expected_eur - 10.0 * m.exp()).abs() < 1e-9);
        assert_eq!(team_size(Some(7), 3), 7);
        assert_eq!(team_size(None, 3), 3);
    }
}
