-- Cost and build counts of one window, by team, status and waste class: the input of every
-- team and org gauge (spec section 8). Small teams are merged afterwards, in code, because the
-- merge depends on the team sizes of the whole product.
--
-- Parameters: $at, $start (window start).
SELECT team, status, waste_class,
       COUNT(*)      AS builds,
       SUM(cost_eur) AS cost_eur
FROM builds
WHERE finished_at >= $start AND finished_at < $at
GROUP BY team, status, waste_class
ORDER BY team, status, waste_class
