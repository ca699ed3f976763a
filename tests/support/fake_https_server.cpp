#include "tests/support/fake_https_server.h"

// Implementation in progress.
namespace runbot::testing {}  // namespace runbot::testing
