#include "domain/period.hpp"
