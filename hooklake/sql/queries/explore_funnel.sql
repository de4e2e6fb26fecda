-- explore_funnel: how far conversations get through the bot's button questions. Row k counts
-- the conversations shown a k-th question and how they answered it; question is the wording
-- most often shown at that step. Reads hooklake_explore_dialog_replies (explore_dialog_replies.sql).
SELECT
    step,
    mode(question) AS question,
    count(*) AS shown,
    count(*) FILTER (WHERE reply = 'button') AS clicked,
    count(*) FILTER (WHERE reply = 'message') AS wrote_instead,
    count(*) FILTER (WHERE reply = 'none') AS no_reply
FROM hooklake_explore_dialog_replies
WHERE step <= $steps
GROUP BY step
ORDER BY step;
