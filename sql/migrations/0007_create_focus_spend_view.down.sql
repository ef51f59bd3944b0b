DROP VIEW IF EXISTS focus_spend
