#include "adapters/teams/jwt_validator.h"

// Implementation in progress.
namespace runbot::teams {}  // namespace runbot::teams
