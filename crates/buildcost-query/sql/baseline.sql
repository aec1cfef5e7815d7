-- View `baseline`: where each eligible team stands against teams of its size (spec section 7).
--
-- Parameters: $at, $baseline_start, $min_team_size, $min_peers, $k_sigma.
-- Tables: `builds`, `teams`. The arithmetic is the product's own (src/peer.rs): `is_eligible`,
-- `log_cost_per_developer` (y = ln(C / N)), `peer_median`, `peer_spread`
-- (max(1.4826 * MAD, 0.05)), `band_zscore`, `band_status` and the bounds `band_*`.
WITH team_cost AS (
    SELECT team, SUM(cost_eur) AS cost
    FROM builds
    WHERE finished_at >= $baseline_start AND finished_at < $at
    GROUP BY team
),
eligible AS (
    -- Large enough to be shown, and it spent something.
    SELECT t.team, t.product, t.developers, c.cost,
           COALESCE(t.peer_group, t.product)            AS own_group,
           log_cost_per_developer(c.cost, t.developers) AS y
    FROM teams t
    JOIN team_cost c ON c.team = t.team
    WHERE is_eligible(t.developers, c.cost, $min_team_size)
),
group_size AS (
    SELECT own_group, COUNT(*) AS peers FROM eligible GROUP BY own_group
),
membership AS (
    -- Every eligible team belongs to its own group and to `_org`, the group of all of them.
    SELECT team, own_group AS peer_group, y FROM eligible
    UNION ALL
    SELECT team, '_org' AS peer_group, y FROM eligible
),
centre AS (
    SELECT peer_group, peer_median(y) AS m FROM membership GROUP BY peer_group
),
spread AS (
    SELECT mb.peer_group, peer_spread(peer_median(abs(mb.y - c.m))) AS s
    FROM membership mb
    JOIN centre c ON c.peer_group = mb.peer_group
    GROUP BY mb.peer_group
),
assigned AS (
    -- A group with too few eligible teams is replaced by `_org`.
    SELECT e.*,
           CASE WHEN g.peers >= $min_peers THEN e.own_group ELSE '_org' END AS peer_group
    FROM eligible e
    JOIN group_size g ON g.own_group = e.own_group
),
scored AS (
    SELECT a.team, a.product, a.peer_group, a.developers, a.cost, a.y, c.m, s.s,
           band_zscore(a.y, c.m, s.s) AS zscore
    FROM assigned a
    JOIN centre c ON c.peer_group = a.peer_group
    JOIN spread s ON s.peer_group = a.peer_group
)
SELECT team, product, peer_group, developers,
       cost                                          AS cost_eur,
       cost / CAST(developers AS DOUBLE)             AS cost_per_developer_eur,
       y, m, s, zscore,
       band_expected(developers, m, s, $k_sigma)     AS expected_eur,
       band_lower(developers, m, s, $k_sigma)        AS lower_eur,
       band_upper(developers, m, s, $k_sigma)        AS upper_eur,
       band_status(zscore, $k_sigma)                 AS status
FROM scored
