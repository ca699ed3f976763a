#include "adapters/teams/bot_connector.h"

// Implementation in progress.
namespace runbot::teams {}  // namespace runbot::teams
