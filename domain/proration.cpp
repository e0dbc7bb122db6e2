#include "domain/proration.hpp"
