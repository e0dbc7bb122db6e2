#include "domain/catalog.hpp"
