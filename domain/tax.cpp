#include "domain/tax.hpp"
