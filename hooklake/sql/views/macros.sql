-- Macros the views share. Run before any view.

-- A conversation's id: its channel, its customer and the millisecond it started. The one place
-- it is computed; conversations, turns and handovers name conversations through it too.
CREATE OR REPLACE TEMP MACRO hooklake_conversation_id(channel_id, customer_id, started_at) AS
    concat(channel_id, '-', customer_id, '-', epoch_us(started_at) // 1000);

-- The UTC date of a timestamp, like the date partitions, whatever the session's time zone:
-- integer arithmetic on the epoch, several times cheaper than converting time zones.
CREATE OR REPLACE TEMP MACRO hooklake_utc_date(ts) AS
    DATE '1970-01-01' + CAST(epoch_us(ts) // 86400000000 AS INTEGER);

-- Whether a build renders a message of this type from its stored message (dialogs, cards,
-- media): every type but text, buttons and the silent ones (TEXT_TYPES and SILENT_TYPES of
-- hooklake.datasets.render).
CREATE OR REPLACE TEMP MACRO hooklake_shown_from_stored(type) AS coalesce(type, '') NOT IN (
    'text', 'button', 'event', 'note', 'notes', 'typing', 'read', 'hidden', 'sys'
);

-- The part of a stored message (`raw`) that a build renders: a dialog's question and options,
-- a card's parts, a caption, a location (hooklake.fields.shown_sql). The same for every time a
-- bot shows the same dialog or card, so builds render each distinct one once. In two steps,
-- so the message is parsed once: `hooklake_shown_parts(type, raw) AS parts` in one
-- projection, `hooklake_shown(parts)` in the next (NULL for NULL). In one expression DuckDB
-- would parse the message once per field of hooklake_shown's CASE.
CREATE OR REPLACE TEMP MACRO hooklake_shown_paths() AS {{shown_paths}};
CREATE OR REPLACE TEMP MACRO hooklake_shown_parts(type, raw) AS
    json_extract(CASE WHEN hooklake_shown_from_stored(type) THEN raw END, hooklake_shown_paths());
CREATE OR REPLACE TEMP MACRO hooklake_shown(p) AS CASE WHEN p IS NOT NULL THEN {{shown_object}} END;
