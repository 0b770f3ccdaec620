-- The most recent errors of each stage instance (newest first, at most 10), so that the instance
-- page shows its own errors rather than its stage's.
ALTER TABLE instances ADD COLUMN recent_errors jsonb NOT NULL DEFAULT '[]'::jsonb;
