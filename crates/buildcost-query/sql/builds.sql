-- View `builds`: one row per distinct build, priced and given its waste class.
--
-- Parameters: none. Tables: `raw_builds` (the Parquet store), `runner_prices` (one row per
-- configured runner class, every key already filled from [pricing.default]),
-- `default_price` (the one [pricing.default] row) and `copies`: the event ids stored more than
-- once (a replay raced another ingester), which is
--     SELECT event_id FROM raw_builds GROUP BY event_id HAVING COUNT(*) > 1
-- computed once per session (the view reads it twice). Copies are rare, so the
-- de-duplication below sorts only their rows, not the whole store.
WITH distinct_builds AS (
    -- The same event_id is the same build: keep its first stored copy only. `copies` is
    -- written first in each join so that it is the side held in memory.
    SELECT r.*, CAST(1 AS BIGINT UNSIGNED) AS copy_no
    FROM copies c RIGHT ANTI JOIN raw_builds r ON c.event_id = r.event_id
    UNION ALL
    SELECT *
    FROM (
        SELECT r.*,
               ROW_NUMBER() OVER (PARTITION BY r.event_id ORDER BY r.ingested_at, r.finished_at) AS copy_no
        FROM copies c RIGHT SEMI JOIN raw_builds r ON c.event_id = r.event_id
    )
    WHERE copy_no = 1
),
priced AS (
    SELECT b.*,
           p.runner_class IS NULL                                    AS unpriced,
           COALESCE(b.cpu_cores, p.cpu_cores, d.cpu_cores)           AS billed_cpu_cores,
           COALESCE(b.memory_gb, p.memory_gb, d.memory_gb)           AS billed_memory_gb,
           COALESCE(CAST(b.gpus AS DOUBLE), p.gpus, d.gpus)          AS billed_gpus,
           COALESCE(p.eur_per_cpu_hour, d.eur_per_cpu_hour)          AS eur_per_cpu_hour,
           COALESCE(p.eur_per_gb_hour, d.eur_per_gb_hour)            AS eur_per_gb_hour,
           COALESCE(p.eur_per_gpu_hour, d.eur_per_gpu_hour)          AS eur_per_gpu_hour,
           COALESCE(p.eur_per_build, d.eur_per_build)                AS eur_per_build,
           -- Rank of a success among successes of the same (repository, pipeline, commit):
           -- the first is real work, later ones rebuild what was already built.
           ROW_NUMBER() OVER (
               PARTITION BY b.status = 'success', b.repository, b.pipeline, b.commit
               ORDER BY b.finished_at, b.event_id
           ) AS success_rank
    FROM distinct_builds b
    LEFT JOIN runner_prices p ON p.runner_class = b.runner_class
    CROSS JOIN default_price d
),
classified AS (
    SELECT *,
           -- Spec section 5: queue time is not billed.
           (duration_s / 3600.0)
             * (billed_cpu_cores * eur_per_cpu_hour
                + billed_memory_gb * eur_per_gb_hour
                + billed_gpus * eur_per_gpu_hour)
             + eur_per_build AS cost_eur,
           -- Spec section 6: first match wins.
           CASE
               WHEN status = 'cancelled' AND superseded                                          THEN 'superseded'
               WHEN status = 'failure' AND failure_category IN ('syntax', 'compile', 'lint', 'format') THEN 'avoidable_failure'
               WHEN status = 'failure' AND failure_category = 'flaky_test'                       THEN 'flaky'
               WHEN status = 'error' OR (status = 'failure' AND failure_category = 'infra')      THEN 'infra_failure'
               WHEN status = 'timeout'                                                           THEN 'timeout'
               WHEN status = 'cancelled'                                                         THEN 'cancelled'
               WHEN status = 'success' AND commit IS NOT NULL AND success_rank > 1               THEN 'duplicate'
               ELSE 'none'
           END AS waste_class
    FROM priced
)
SELECT event_id, source, build_id, pipeline, repository, branch, commit, trigger,
       team, product, author_key, queued_at, started_at, finished_at, duration_s,
       status, failure_stage, failure_category, category_source,
       runner_class, unpriced, billed_cpu_cores AS cpu_cores, billed_memory_gb AS memory_gb,
       billed_gpus AS gpus, attempt, superseded, correlation_id, labels, ingested_at,
       cost_eur,
       waste_class,
       CASE
           WHEN waste_class IN ('superseded', 'avoidable_failure', 'cancelled', 'duplicate') THEN 'developer'
           WHEN waste_class IN ('flaky', 'infra_failure', 'timeout')                         THEN 'platform'
           ELSE 'none'
       END AS waste_owner
FROM classified
