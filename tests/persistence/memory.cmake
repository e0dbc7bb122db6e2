# memory store + contract suite (owner: memory store engineer)
# The store contract suite against the in-memory store, plus its own tests.
recur_test(memory_store_test LABEL unit
  SOURCES store_contract.cpp memory_store_test.cpp
  DEPS recur::persistence)
