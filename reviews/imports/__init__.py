"""File imports in the admin: an admin uploads JSONL or CSV, maps columns, a job ingests it."""
