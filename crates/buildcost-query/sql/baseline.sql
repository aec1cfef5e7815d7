-- View `baseline`: where each eligible team stands against teams of its size (spec section 7).
--
-- Parameters: :at, :baseline_start, :min_team_size, :min_peers, :k_sigma.
-- Tables: `builds`, `teams`.
WITH team_cost AS (
    SELECT team, SUM(cost_eur) AS cost
    FROM builds
    WHERE finished_at >= :baseline_start AND finished_at < :at
    GROUP BY team
),
eligible AS (
    -- Large enough to be shown, and it spent something: y = ln(C / N).
    SELECT t.team, t.product, t.developers, c.cost,
           COALESCE(t.peer_group, t.product)          AS own_group,
           ln(c.cost / CAST(t.developers AS DOUBLE)) AS y
    FROM teams t
    JOIN team_cost c ON c.team = t.team
    WHERE t.developers >= :min_team_size AND c.cost > 0
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
    SELECT peer_group, median(y) AS m FROM membership GROUP BY peer_group
),
spread AS (
    SELECT mb.peer_group, median(abs(mb.y - c.m)) AS mad
    FROM membership mb
    JOIN centre c ON c.peer_group = mb.peer_group
    GROUP BY mb.peer_group
),
assigned AS (
    -- A group with too few eligible teams is replaced by `_org`.
    SELECT e.*,
           CASE WHEN g.peers >= :min_peers THEN e.own_group ELSE '_org' END AS peer_group
    FROM eligible e
    JOIN group_size g ON g.own_group = e.own_group
),
scored AS (
    SELECT a.team, a.product, a.peer_group, a.developers, a.cost, a.y,
           c.m,
           greatest(1.4826 * s.mad, 0.05) AS s
    FROM assigned a
    JOIN centre c ON c.peer_group = a.peer_group
    JOIN spread s ON s.peer_group = a.peer_group
)
SELECT team, product, peer_group, developers,
       cost                                            AS cost_eur,
       cost / CAST(developers AS DOUBLE)               AS cost_per_developer_eur,
       y, m, s,
       (y - m) / s                                     AS zscore,
       developers * exp(m)                             AS expected_eur,
       developers * exp(m - :k_sigma * s)              AS lower_eur,
       developers * exp(m + :k_sigma * s)              AS upper_eur,
       CASE
           WHEN (y - m) / s > :k_sigma  THEN 'above'
           WHEN (y - m) / s < -:k_sigma THEN 'below'
           ELSE 'within'
       END                                             AS status
FROM scored
