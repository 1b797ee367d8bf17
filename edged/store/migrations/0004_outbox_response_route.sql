-- MQTT 5 replies: the correlation data a request carried is echoed on its response, so the
-- outbox row that holds the reply keeps it (NULL for every other message).
ALTER TABLE outbox ADD COLUMN correlation BLOB;
