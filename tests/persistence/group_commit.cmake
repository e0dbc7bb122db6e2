# group-commit writer and fault tests (owner: group-commit engineer)
