#include "domain/pricing.hpp"
