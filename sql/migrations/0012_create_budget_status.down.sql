DROP TABLE IF EXISTS budget_status
