-- Macros the views share. Run before any view.

-- A conversation's id: its channel, its customer and the millisecond it started. The one place
-- it is computed; conversations, turns and handovers name conversations through it too.
CREATE OR REPLACE TEMP MACRO hooklake_conversation_id(channel_id, customer_id, started_at) AS
    concat(channel_id, '-', customer_id, '-', epoch_us(started_at) // 1000);
