"""ClickHouse SQL of tokenpulse, shared by the embedded engine (chDB) and a ClickHouse server.

    migrations/NNNN_verb_object.{up,down}.sql   one logical change per file, never edited once merged
    queries/*.sql                               saved queries; `{name:Type}` are bound parameters
"""

from pathlib import Path

SQL_DIR = Path(__file__).parent
MIGRATIONS_DIR = SQL_DIR / "migrations"
QUERIES_DIR = SQL_DIR / "queries"
