#include "workflows/retry_policy.hpp"
