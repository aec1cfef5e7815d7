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

// Delivery (spec section 12).
pub const PRODUCT_DEPLOYMENTS: &str = "buildcost_product_deployments";
pub const PRODUCT_REQUESTS_DELIVERED: &str = "buildcost_product_requests_delivered";
pub const PRODUCT_LEAD_TIME: &str = "buildcost_product_request_lead_time_seconds";
pub const PRODUCT_DELIVERED_CI_COST: &str = "buildcost_product_delivered_requests_ci_cost_euros";
pub const ORG_DEPLOYMENTS: &str = "buildcost_org_deployments";
pub const ORG_LEAD_TIME: &str = "buildcost_org_request_lead_time_seconds";
pub const TEAM_LEAD_TIME: &str = "buildcost_team_request_lead_time_seconds";
pub const TEAM_ORPHAN_REPOSITORIES: &str = "buildcost_team_orphan_repositories";
pub const TEAM_ORPHAN_COST: &str = "buildcost_team_orphan_repository_cost_euros";
pub const ORG_ORPHAN_COST: &str = "buildcost_org_orphan_repository_cost_euros";

// The service's own health (spec section 8, last paragraph).
pub const EVENTS_ACCEPTED: &str = "buildcost_events_accepted_total";
pub const EVENTS_REJECTED: &str = "buildcost_events_rejected_total";
pub const EVENTS_DUPLICATE: &str = "buildcost_events_duplicate_total";
pub const DEAD_LETTERS: &str = "buildcost_dead_letters_total";
pub const BUILDS_UNPRICED: &str = "buildcost_builds_unpriced_total";
pub const FILES_WRITTEN: &str = "buildcost_files_written_total";
pub const ROWS_WRITTEN: &str = "buildcost_rows_written_total";
pub const CONSUMER_LAG: &str = "buildcost_consumer_lag_messages";
pub const CONSUMER_BROKERS_UP: &str = "buildcost_consumer_brokers_up";
pub const CONSUMER_PENDING: &str = "buildcost_consumer_pending_messages";
pub const CONSUMER_ERRORS: &str = "buildcost_consumer_errors_total";
pub const COMMIT_FAILURES: &str = "buildcost_commit_failures_total";
pub const STORE_WRITE_FAILURES: &str = "buildcost_store_write_failures_total";
pub const STORE_READ_FAILURES: &str = "buildcost_store_read_failures_total";
pub const STORE_QUARANTINED: &str = "buildcost_store_quarantined_files_total";
pub const REFRESHES: &str = "buildcost_refreshes_total";
pub const REFRESH_FAILURES: &str = "buildcost_refresh_failures_total";
pub const REFRESH_DURATION: &str = "buildcost_refresh_duration_seconds";
pub const REFRESH_LAST_SUCCESS: &str = "buildcost_refresh_last_success_timestamp_seconds";
pub const SNAPSHOT_AT: &str = "buildcost_snapshot_evaluated_at_timestamp_seconds";
pub const BUILD_INFO: &str = "buildcost_build_info";
pub const UP_SINCE: &str = "buildcost_start_time_seconds";
