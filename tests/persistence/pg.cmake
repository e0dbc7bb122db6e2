# PostgreSQL store tests (owner: pg engineer)
