# memory store + contract suite (owner: memory store engineer)
