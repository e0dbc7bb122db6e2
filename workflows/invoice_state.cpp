#include "workflows/invoice_state.hpp"
