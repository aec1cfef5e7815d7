-- View `teams`: every team with builds in the 28 days before the evaluation instant, with its
-- product, size N and peer group (spec section 7).
--
-- Parameters: $at (evaluation instant), $window_28d_start ($at - 28 days),
-- $baseline_start ($at - baseline.window_days). Tables: `builds`, `teams_file` (the CSV).
-- `main_product` and `team_size` are the product's rules (src/peer.rs), as the gauges use them.
WITH main AS (
    -- An unlisted team's product: the one on most of its builds (ties: alphabetical).
    SELECT team, main_product(product) AS product
    FROM builds
    WHERE finished_at >= $window_28d_start AND finished_at < $at
    GROUP BY team
),
authors AS (
    -- An unlisted team's size: the distinct people who built in the baseline window.
    SELECT team, COUNT(DISTINCT author_key) AS developers
    FROM builds
    WHERE finished_at >= $baseline_start AND finished_at < $at
    GROUP BY team
)
SELECT m.team,
       COALESCE(f.product, m.product)                                 AS product,
       team_size(f.developers, COALESCE(a.developers, 0))             AS developers,
       f.peer_group                                                   AS peer_group,
       f.team IS NOT NULL                                             AS listed
FROM main m
LEFT JOIN teams_file f ON f.team = m.team
LEFT JOIN authors a    ON a.team = m.team
