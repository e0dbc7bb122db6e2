#include "workflows/payment_attempt.hpp"
