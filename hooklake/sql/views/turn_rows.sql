-- hooklake_turns, what the turns view shows: consecutive messages of the same role in a
-- conversation, merged. Customers speak as 'user'; bots and agents both as 'assistant', so a
-- bot-to-agent handover continues the assistant's turn (has_agent tells which turns a human
-- wrote part of; sender_type is the sender of the turn's first message). System events are not turns and do not break one.
-- turn_index is 1-based, like messages.position; text joins the messages' texts with newlines.
CREATE OR REPLACE TEMP VIEW hooklake_turns AS
WITH merged AS (
    SELECT
        conversation_id,
        _run,
        any_value(role) AS role,
        arg_min(sender_type, _rn) AS sender_type,
        bool_or(sender_type = 'agent') AS has_agent,
        -- Sorting each turn's small list is cheaper than an ordered aggregate; string_agg and
        -- array_to_string both skip null texts (media without a caption).
        array_to_string(
            list_transform(list_sort(list({'rn': _rn, 'text': text})), lambda m: m.text),
            chr(10)
        ) AS text,
        min(ts) AS started_at,
        max(ts) AS ended_at,
        list_transform(
            list_sort(list({'rn': _rn, 'key': message_key})), lambda m: m.key
        ) AS message_keys,
        count(*) AS n_messages,
        min(position) AS first_position,
        max(position) AS last_position
    FROM hooklake_messages_ordered
    WHERE role IS NOT NULL
    GROUP BY conversation_id, _run
)
SELECT
    conversation_id,
    -- Runs inside a conversation are numbered consecutively.
    _run - min(_run) OVER (PARTITION BY conversation_id) + 1 AS turn_index,
    * EXCLUDE (conversation_id, _run)
FROM merged;
