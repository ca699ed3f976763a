#include "tests/support/fake_bot_framework.h"

// Implementation in progress.
namespace runbot::testing {}  // namespace runbot::testing
