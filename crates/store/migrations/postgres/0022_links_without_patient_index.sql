-- Issue 18 (session 21): a personal link is written with every confirmation and reminder that
-- carries one, and `appointment_links_patient` took an entry of each at the place of its patient
-- among all the practice's: with patient ids in no particular order (as practice software gives
-- them), one random page of the index a link. Its only reader was a patient's erasure, which is
-- rare and now reads the practice's live links through the primary key (`practice_id` first):
-- links are purged once expired (`retention.rs`), so those are the coming appointments' links.
DROP INDEX appointment_links_patient;
