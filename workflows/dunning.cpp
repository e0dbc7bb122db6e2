#include "workflows/dunning.hpp"
