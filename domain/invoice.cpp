#include "domain/invoice.hpp"
