-- Issue 18: a delivery report names its message by the provider's id only (Twilio's MessageSid,
-- OVH's id, the gateway's id, an email's Message-ID). It now goes through the routing table
-- like the other lookups that cannot know the practice: each hand-off that gets a provider id
-- routes it to its practice (kind `provider_message`), and the row is then read within that
-- practice, so the lookup is no longer a read of every practice's notifications.
-- Provider ids are unique per provider account; should two practices' rows share one, the
-- route names the first practice by id, as the read across practices did before.
INSERT INTO lookup_routes (kind, lookup_key, practice_id, expires_at)
SELECT 'provider_message', provider_id, MIN(practice_id), NULL
FROM notifications WHERE provider_id IS NOT NULL
GROUP BY provider_id;

-- The provider id's index is now led by practice_id like every other one.
DROP INDEX notifications_provider;
CREATE INDEX notifications_provider ON notifications (practice_id, provider_id);
