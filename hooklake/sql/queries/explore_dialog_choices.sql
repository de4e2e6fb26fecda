-- explore_dialog_choices: which button customers clicked for each question, with how often
-- the question was shown; questions shown most come first. Reads hooklake_explore_dialog_replies
-- (explore_dialog_replies.sql).
WITH questions AS (
    SELECT question, count(*) AS shown
    FROM hooklake_explore_dialog_replies
    GROUP BY question
)
SELECT
    r.question,
    r.choice,
    count(*) AS clicks,
    q.shown,
    count(*) / q.shown AS share_of_shown
FROM hooklake_explore_dialog_replies AS r
JOIN questions AS q ON q.question IS NOT DISTINCT FROM r.question
WHERE r.reply = 'button'
GROUP BY r.question, r.choice, q.shown
ORDER BY q.shown DESC, r.question, clicks DESC, r.choice;
