#include "domain/ledger.hpp"
