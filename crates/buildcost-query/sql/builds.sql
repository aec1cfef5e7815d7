-- View `builds`: one row per distinct build, priced and given its waste class.
--
-- Parameters: none. Tables: `raw_builds` (the Parquet store) and `copies`: the event ids
-- stored more than once (a replay raced another ingester), which is
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
ranked AS (
    -- Rank of a success among successes of the same (repository, pipeline, commit): the
    -- first is real work, later ones rebuild what was already built.
    SELECT b.*,
           ROW_NUMBER() OVER (
               PARTITION BY b.status = 'success', b.repository, b.pipeline, b.commit
               ORDER BY b.finished_at, b.event_id
           ) AS success_rank
    FROM distinct_builds b
),
classified AS (
    -- The rules are the product's own functions (crates/buildcost-query/src/functions.rs):
    -- the price of spec section 5 with the runner class's fall-backs, and the waste class
    -- of spec section 6, first match wins.
    SELECT *,
           build_cost(runner_class, duration_s, cpu_cores, memory_gb, gpus) AS cost_eur,
           waste_class(status, superseded, failure_category,
                       status = 'success' AND commit IS NOT NULL AND success_rank > 1) AS waste_class
    FROM ranked
)
SELECT event_id, source, build_id, pipeline, repository, branch, commit, trigger,
       team, product, author_key, queued_at, started_at, finished_at, duration_s,
       status, failure_stage, failure_category, category_source,
       runner_class,
       is_unpriced(runner_class)                 AS unpriced,
       billed_cpu_cores(runner_class, cpu_cores) AS cpu_cores,
       billed_memory_gb(runner_class, memory_gb) AS memory_gb,
       billed_gpus(runner_class, gpus)           AS gpus,
       attempt, superseded, correlation_id, labels, ingested_at,
       cost_eur,
       waste_class,
       waste_owner(waste_class)                  AS waste_owner
FROM classified
