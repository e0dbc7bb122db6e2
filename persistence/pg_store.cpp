#include "persistence/pg_store.hpp"
