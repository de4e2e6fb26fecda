-- The rows an index write stores: hooklake_messages_ordered (for the customers being written)
-- as `message` rows, each turn's figures on its first message (a customer turn's with the
-- answering turn's text), each hand-off on the message it starts at, and the part of the
-- stored message a build renders (`_shown`, hooklake_shown in macros.sql: dialogs, cards and
-- media; read by build_messages_indexed.sql, so builds neither read nor parse `raw`), plus a
-- `conversation` row per conversation: its first message's ids and times without the payload
-- columns, with the conversation's figures (read back by views/index_summaries.sql). In index
-- order: by customer, then by the customer's stream.
-- An update recomputes spans of a customer's stream (hooklake_index_touched, see
-- index_touched.sql; empty for a rebuild): _since and _until record the span each row was
-- computed for. $layer and $generation are the rows' partition (see index/schema.py).
-- The two branches each read hooklake_messages_ordered, computed once (index_ordered_once.sql).
SELECT
    o.* EXCLUDE (_parts),
    NULL AS _conversation,
    CASE WHEN t.conversation_id IS NOT NULL THEN {
        'turn_index': t.turn_index,
        'role': t.role,
        'sender_type': t.sender_type,
        'has_agent': t.has_agent,
        'text': t.text,
        'started_at': t.started_at,
        'ended_at': t.ended_at,
        'message_keys': t.message_keys,
        'n_messages': t.n_messages,
        'first_position': t.first_position,
        'last_position': t.last_position,
        'response': t.response,
        'response_has_agent': t.response_has_agent
    } END AS _turn,
    CASE WHEN h.conversation_id IS NOT NULL THEN {
        'agent_id': h.agent_id,
        'assigned_at': h.assigned_at,
        'unassigned_at': h.unassigned_at,
        'first_agent_reply_at': h.first_agent_reply_at,
        'source': h.source
    } END AS _handover,
    hooklake_shown(o._parts) AS _shown,
    p.since AS _since,
    p.until AS _until,
    CAST($layer AS TINYINT) AS layer,
    CAST($generation AS VARCHAR) AS generation,
    'message' AS kind
FROM (
    -- Parsed in a projection of its own, so once (macros.sql).
    SELECT *, hooklake_shown_parts(type, raw) AS _parts FROM hooklake_messages_ordered
) AS o
LEFT JOIN hooklake_turns_answered AS t
    ON t.conversation_id = o.conversation_id AND t.first_position = o.position
LEFT JOIN hooklake_handovers AS h
    ON h.conversation_id = o.conversation_id AND h.position = o.position
LEFT JOIN hooklake_index_touched AS p
    ON p.channel_id IS NOT DISTINCT FROM o.channel_id
    AND p.customer_id = o.customer_id
    AND o.ts >= p.since
    AND o.ts < coalesce(p.until, 'infinity'::TIMESTAMPTZ)
UNION ALL
SELECT
    o.* REPLACE (
        NULL AS text, NULL AS payload, NULL AS data, NULL AS customer, NULL AS raw
    ),
    {
        'ended_at': c.ended_at,
        'n_messages': c.n_messages,
        'n_customer': c.n_customer,
        'n_bot': c.n_bot,
        'n_agent': c.n_agent,
        'n_sys': c.n_sys,
        'has_agent': c.has_agent,
        'channel_name': c.channel_name,
        'channel_type': c.channel_type
    } AS _conversation,
    NULL AS _turn,
    NULL AS _handover,
    NULL AS _shown,
    p.since AS _since,
    p.until AS _until,
    CAST($layer AS TINYINT) AS layer,
    CAST($generation AS VARCHAR) AS generation,
    'conversation' AS kind
FROM hooklake_messages_ordered AS o
JOIN hooklake_conversation_counts AS c
    ON o.position = 1 AND c.conversation_id = o.conversation_id
LEFT JOIN hooklake_index_touched AS p
    ON p.channel_id IS NOT DISTINCT FROM o.channel_id
    AND p.customer_id = o.customer_id
    AND o.ts >= p.since
    AND o.ts < coalesce(p.until, 'infinity'::TIMESTAMPTZ)
ORDER BY channel_id, customer_id, _started_at, position, kind DESC;
