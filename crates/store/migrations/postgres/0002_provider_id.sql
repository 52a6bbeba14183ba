-- Delivery reports name a message only by the provider's id (Twilio's MessageSid, OVH's id, the
-- gateway's webhook id), with no practice: this index is, with notifications_queue, the second
-- one not led by practice_id. Provider ids are unique per provider account, so it stays selective.
CREATE INDEX notifications_provider ON notifications (provider_id);
