-- The provider service tier a call was billed under (standard, batch, flex, priority, ...);
-- batch and other tiers have their own prices in the catalog.
ALTER TABLE token_spans ADD COLUMN IF NOT EXISTS service_tier LowCardinality(String) DEFAULT 'standard' AFTER error_type
