-- View `teams`: every team with builds in the 28 days before the evaluation instant, with its
-- product, size N and peer group (spec section 7).
--
-- Parameters: :at (evaluation instant), :window_28d_start (:at - 28 days),
-- :baseline_start (:at - baseline.window_days). Tables: `builds`, `teams_file` (the CSV).
WITH recent AS (
    SELECT team, product FROM builds
    WHERE finished_at >= :window_28d_start AND finished_at < :at
),
product_votes AS (
    SELECT team, product, COUNT(*) AS builds FROM recent GROUP BY team, product
),
main_product AS (
    -- An unlisted team's product is the one on most of its builds (ties: alphabetical).
    SELECT team, product
    FROM (
        SELECT team, product,
               ROW_NUMBER() OVER (PARTITION BY team ORDER BY builds DESC, product ASC) AS rank_no
        FROM product_votes
    )
    WHERE rank_no = 1
),
authors AS (
    -- An unlisted team's size is the number of distinct people who built in the baseline window.
    SELECT team, COUNT(DISTINCT author_key) AS developers
    FROM builds
    WHERE finished_at >= :baseline_start AND finished_at < :at
    GROUP BY team
)
SELECT m.team,
       COALESCE(f.product, m.product)                          AS product,
       CAST(COALESCE(f.developers, a.developers, 0) AS BIGINT) AS developers,
       f.peer_group                                            AS peer_group,
       f.team IS NOT NULL                                      AS listed
FROM main_product m
LEFT JOIN teams_file f ON f.team = m.team
LEFT JOIN authors a    ON a.team = m.team
