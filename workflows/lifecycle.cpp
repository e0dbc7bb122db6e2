#include "workflows/lifecycle.hpp"
