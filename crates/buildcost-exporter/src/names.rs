//! Every business metric name, in one place (spec section 8).

pub const TEAM_COST: &str = "buildcost_team_cost_euros";
pub const TEAM_WASTE_COST: &str = "buildcost_team_waste_cost_euros";
pub const TEAM_BUILDS: &str = "buildcost_team_builds";
pub const TEAM_DEVELOPERS: &str = "buildcost_team_developers";
pub const TEAM_COST_PER_DEVELOPER: &str = "buildcost_team_cost_per_developer_euros";
pub const TEAM_EXPECTED_COST: &str = "buildcost_team_expected_cost_euros";
pub const TEAM_DEVIATION_ZSCORE: &str = "buildcost_team_deviation_zscore";
pub const TEAM_BASELINE_STATUS: &str = "buildcost_team_baseline_status";
pub const ORG_COST: &str = "buildcost_org_cost_euros";
pub const ORG_WASTE_COST: &str = "buildcost_org_waste_cost_euros";
pub const ORG_BUILDS: &str = "buildcost_org_builds";
pub const ORG_DEVELOPERS: &str = "buildcost_org_developers";
pub const NORTHSTAR: &str = "buildcost_northstar_avoidable_waste_ratio";
pub const ORG_WASTE_RATIO: &str = "buildcost_org_waste_ratio";
pub const BUILDS_PER_DEVELOPER_PER_DAY: &str = "buildcost_builds_per_developer_per_day";
