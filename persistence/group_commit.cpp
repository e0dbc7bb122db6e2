#include "persistence/group_commit.hpp"
