#pragma once
// GraphClient: the one Microsoft Graph call runbot makes — the Entra groups a Teams user belongs
// to, directly or through nested groups, so that role bindings by `groups` match Teams users.
//
//   GET {graph_url}/users/{aadObjectId}/transitiveMemberOf/microsoft.graph.group
//       ?$select=id,displayName&$top=999&$count=true        ConsistencyLevel: eventual
//
// (the OData cast to groups needs the ConsistencyLevel header and $count; 999 is the largest page).
// Pages are followed through `@odata.nextLink`, at most `max_pages` of them; a next link that does
// not point at graph_url's origin is refused (the token goes nowhere else).
//
// Token: its own ClientCredentials with scope `https://graph.microsoft.com/.default` from the same
// token endpoint, app id and secret as the Bot Connector's. A 401 renews it and retries once.
// Permission: the application permission GroupMember.Read.All (admin consent); with User.Read.All
// alone Graph answers with ids and no names, so only bindings by group id match.
//
// Errors (for denials and the log; the identity cache remembers a failure for a minute, nothing
// retries here): 403 → unauthorized naming the permission to grant; 404 → not_found (no such user
// in the directory: a guest from another tenant); 429, 5xx, network → rate_limited / unavailable;
// more pages than max_pages → invalid_argument. Messages never contain tokens or bodies.
//
// Borrows the HttpsClient and the clock; not thread-safe; `done` runs exactly once, never inside
// the call. Destroying the client drops pending callbacks.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/common/https_client.h"
#include "adapters/teams/teams_settings.h"
#include "bot/clock.h"
#include "bot/result.h"

namespace runbot::teams {

struct DirectoryGroup {
  std::string id;    // the group's object id (GUID)
  std::string name;  // displayName; empty when Graph withholds it (User.Read.All only)
  bool operator==(const DirectoryGroup&) const = default;
};

struct GroupPage {
  std::vector<DirectoryGroup> groups;
  std::string next_link;  // empty on the last page
};

// The first page's URL for `object_id` under `graph_url` (no trailing slash needed).
std::string member_groups_url(std::string_view graph_url, std::string_view object_id);

// One page of a transitiveMemberOf answer: {"value":[{"id","displayName",…}…],
// "@odata.nextLink"?}. Entries without an id are skipped; a body without a `value` array is an
// error.
bot::Result<GroupPage> parse_group_page(const std::string& body);

// Whether `link` may receive the Graph token: same scheme, host and port as `graph_url`.
bool same_origin(std::string_view graph_url, std::string_view link);

class GraphClient {
 public:
  using GroupsCallback = std::function<void(bot::Result<std::vector<DirectoryGroup>>)>;

  // `credentials` gives app id, secret, tenant, token_url, timeout and refresh_before (the Bot
  // Connector's); the scope comes from `graph`.
  GraphClient(common::HttpsClient& http, const ConnectorSettings& credentials,
              GraphSettings graph, bot::Clock& clock);
  ~GraphClient();
  GraphClient(const GraphClient&) = delete;
  GraphClient& operator=(const GraphClient&) = delete;

  // Every group `object_id` (a user's aadObjectId) is a member of, direct or nested.
  void member_groups(const std::string& object_id, GroupsCallback done);

  std::uint64_t token_requests() const;
  std::uint64_t calls() const;  // Graph requests sent (pages and retries included)

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace runbot::teams
