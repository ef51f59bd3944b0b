DROP TABLE IF EXISTS outcomes;
DROP TABLE IF EXISTS savings_daily;
DROP TABLE IF EXISTS growth_findings
