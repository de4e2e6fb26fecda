-- explore_volume: messages, new conversations and active customers per period and channel,
-- for analysts' "volume over time" charts. Periods are UTC and every period between the first
-- and the last message has a row for every channel (zero when nothing happened), so plots show
-- quiet hours as zero rather than joining the dots across them.
--
-- $every is the period width (an INTERVAL such as '1 hour' or '1 day'); NULL picks one from
-- the lake's span: hours up to 3 days of traffic, days up to 120 days, weeks (from Monday)
-- beyond.
WITH chosen AS (
    SELECT
        coalesce(
            CAST($every AS INTERVAL),
            CASE
                WHEN max(ts) - min(ts) <= INTERVAL 3 DAY THEN INTERVAL 1 HOUR
                WHEN max(ts) - min(ts) <= INTERVAL 120 DAY THEN INTERVAL 1 DAY
                ELSE INTERVAL 7 DAY
            END
        ) AS every,
        min(ts) AS first_ts,
        max(ts) AS last_ts
    FROM messages
),
span AS (
    -- time_bucket takes months, days or microseconds but no mix of days and time (such as
    -- '1 day 2 hours'): anything without months is counted in microseconds, from the same
    -- origin (Monday 2000-01-03 00:00 UTC), so days still start at midnight UTC.
    SELECT
        CASE
            WHEN datepart('year', every) = 0 AND datepart('month', every) = 0
                THEN to_microseconds(CAST(round(epoch(every) * 1000000) AS BIGINT))
            ELSE every
        END AS every,
        first_ts,
        last_ts
    FROM chosen
),
periods AS (
    SELECT unnest(range(
        time_bucket(every, first_ts), time_bucket(every, last_ts) + every, every
    )) AS period
    FROM span
    WHERE first_ts IS NOT NULL
),
counts AS (
    SELECT
        time_bucket(span.every, m.ts) AS period,
        m.channel_id,
        count(*) AS messages,
        count(*) FILTER (WHERE m.position = 1) AS conversations,
        count(DISTINCT m.customer_id) AS customers
    FROM messages AS m
    CROSS JOIN span
    GROUP BY ALL
)
SELECT
    p.period,
    ch.channel,
    coalesce(c.messages, 0) AS messages,
    coalesce(c.conversations, 0) AS conversations,
    coalesce(c.customers, 0) AS customers
FROM periods AS p
CROSS JOIN hooklake_explore_channels AS ch
LEFT JOIN counts AS c
    ON c.period = p.period AND c.channel_id IS NOT DISTINCT FROM ch.channel_id
ORDER BY p.period, ch.channel;
