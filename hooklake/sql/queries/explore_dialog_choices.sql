-- explore_dialog_choices: which button customers clicked for each question, with how often
-- the question was shown; questions shown most come first. Reads hooklake_explore_dialog_replies
-- (explore_dialog_replies.sql) once: each read of that view sorts every message again.
WITH replies AS (
    SELECT question, reply, choice, count(*) OVER (PARTITION BY question) AS shown
    FROM hooklake_explore_dialog_replies
)
SELECT
    question,
    choice,
    count(*) AS clicks,
    shown,
    count(*) / shown AS share_of_shown
FROM replies
WHERE reply = 'button'
GROUP BY question, choice, shown
ORDER BY shown DESC, question, clicks DESC, choice;
