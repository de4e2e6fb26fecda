-- Macros the views share. Run before any view.

-- A conversation's id: its channel, its customer and the millisecond it started. The one place
-- it is computed; conversations, turns and handovers name conversations through it too.
CREATE OR REPLACE TEMP MACRO hooklake_conversation_id(channel_id, customer_id, started_at) AS
    concat(channel_id, '-', customer_id, '-', epoch_us(started_at) // 1000);

-- The UTC date of a timestamp, like the date partitions, whatever the session's time zone:
-- integer arithmetic on the epoch, several times cheaper than converting time zones.
CREATE OR REPLACE TEMP MACRO hooklake_utc_date(ts) AS
    DATE '1970-01-01' + CAST(epoch_us(ts) // 86400000000 AS INTEGER);
