#include "persistence/memory_store.hpp"
