-- Where a build through the conversation index cuts the lake into ranges of conversation ids
-- (build_messages_indexed.sql reads one range at a time): the conversation ids at the
-- fractions $fractions (DOUBLE[], ascending) of all message rows, so the ranges hold about as
-- many messages each. One row, one list; a value may repeat (a very long conversation).
SELECT quantile_disc(conversation_id, $fractions::DOUBLE[]) AS bounds
FROM messages
WHERE conversation_id IS NOT NULL;
