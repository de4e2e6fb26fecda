-- explore_dialog_replies: one row per button question (a bot dialog, or a WhatsApp
-- card_template) shown in a conversation, with how the customer answered it:
--   reply 'button'  clicked one of the buttons (choice is the button's text),
--         'message' wrote something (text, a photo, ...) instead,
--         'none'    said nothing before the next question or the end of the conversation.
-- step numbers the questions of a conversation 1, 2, 3, ... in order. The funnel and
-- dialog_choices queries read it as the temporary view hooklake_explore_dialog_replies.
WITH marked AS (
    SELECT
        conversation_id,
        channel_id,
        position,
        type,
        text,
        data,
        sender_type,
        sender_type = 'bot' AND type IN ('dialog', 'card_template') AS is_question
    FROM messages
),
numbered AS (
    SELECT
        *,
        -- Each question opens a group that runs until the next question.
        sum(CASE WHEN is_question THEN 1 ELSE 0 END) OVER (
            PARTITION BY conversation_id ORDER BY position ROWS UNBOUNDED PRECEDING
        ) AS step
    FROM marked
),
grouped AS (
    SELECT
        conversation_id,
        any_value(channel_id) AS channel_id,
        CAST(step AS BIGINT) AS step,
        arg_min(
            coalesce(text, json_extract_string(data, '$.title'), json_extract_string(data, '$.body')),
            position
        ) FILTER (WHERE is_question) AS question,
        arg_min(type, position) FILTER (WHERE sender_type = 'customer') AS reply_type,
        arg_min(text, position) FILTER (WHERE sender_type = 'customer') AS reply_text
    FROM numbered
    WHERE step > 0
    GROUP BY conversation_id, step
)
SELECT
    g.conversation_id,
    ch.channel,
    g.step,
    g.question,
    CASE
        WHEN g.reply_type IS NULL THEN 'none'
        WHEN g.reply_type = 'button' THEN 'button'
        ELSE 'message'
    END AS reply,
    CASE WHEN g.reply_type = 'button' THEN g.reply_text END AS choice
FROM grouped AS g
JOIN hooklake_explore_channels AS ch ON ch.channel_id IS NOT DISTINCT FROM g.channel_id
ORDER BY g.conversation_id, g.step;
