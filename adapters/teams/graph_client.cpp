#include "adapters/teams/graph_client.h"

#include <algorithm>
#include <cctype>
#include <random>
#include <utility>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "adapters/common/url.h"
#include "adapters/teams/bot_connector.h"
#include "adapters/teams/teams_log.h"

namespace runbot::teams {

using nlohmann::json;

namespace {

constexpr std::string_view kService = "teams graph";
constexpr std::string_view kGrant =
    " (grant the app registration the Microsoft Graph application permission "
    "GroupMember.Read.All, with admin consent)";

}  // namespace

std::string member_groups_url(std::string_view graph_url, std::string_view object_id) {
  std::string url(graph_url);
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url + "/users/" + encode_path_segment(object_id) +
         "/transitiveMemberOf/microsoft.graph.group?$select=id,displayName&$top=999&$count=true";
}

bot::Result<GroupPage> parse_group_page(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return bot::make_error(bot::Errc::invalid_argument, "teams graph: the answer is not JSON");
  auto value = j.find("value");
  if (value == j.end() || !value->is_array())
    return bot::make_error(bot::Errc::invalid_argument, "teams graph: the answer has no value list");
  GroupPage page;
  for (const auto& g : *value) {
    if (!g.is_object()) continue;
    auto id = g.find("id");
    if (id == g.end() || !id->is_string() || id->get<std::string>().empty()) continue;
    DirectoryGroup group{id->get<std::string>(), {}};
    if (auto name = g.find("displayName"); name != g.end() && name->is_string())
      group.name = name->get<std::string>();
    page.groups.push_back(std::move(group));
  }
  if (auto next = j.find("@odata.nextLink"); next != j.end() && next->is_string())
    page.next_link = next->get<std::string>();
  return page;
}

bool same_origin(std::string_view graph_url, std::string_view link) {
  auto a = common::parse_url(graph_url);
  auto b = common::parse_url(link);
  if (!a || !b || a->scheme != b->scheme || a->port != b->port) return false;
  // Host names are case-insensitive.
  return std::equal(a->host.begin(), a->host.end(), b->host.begin(), b->host.end(),
                    [](unsigned char x, unsigned char y) { return std::tolower(x) == std::tolower(y); });
}

struct GraphClient::Impl : std::enable_shared_from_this<GraphClient::Impl> {
  Impl(common::HttpsClient& h, const ConnectorSettings& credentials, GraphSettings g,
       bot::Clock& c)
      : http(h),
        graph(std::move(g)),
        timeout(credentials.timeout),
        clock(c),
        random([gen = std::make_shared<std::mt19937_64>(std::random_device{}())]() {
          return std::uniform_real_distribution<double>(0.0, 1.0)(*gen);
        }),
        tokens(h, credentials, graph.scope, "teams graph token", c, random) {}

  struct Lookup {
    std::string object_id;
    std::vector<DirectoryGroup> groups;
    int pages = 0;
    GroupsCallback done;
  };

  common::HttpsClient& http;
  GraphSettings graph;
  std::chrono::milliseconds timeout;
  bot::Clock& clock;
  ClientCredentials::Random random;
  ClientCredentials tokens;
  bot::DeferredCalls deferred{clock};
  std::uint64_t n_calls = 0;

  void later(std::function<void()> fn) { deferred.later(std::move(fn)); }

  // Fetches `url` (a page of `lookup`), with one 401 renewal.
  void page(std::shared_ptr<Lookup> lookup, std::string url, bool retried) {
    std::weak_ptr<Impl> weak = weak_from_this();
    tokens.get([weak, lookup, url, retried](bot::Result<std::string> tok) {
      auto self = weak.lock();
      if (!self) return;
      if (!tok) {
        bot::Error e = tok.error();
        e.message = "teams graph: no token: " + e.message;
        return lookup->done(std::move(e));
      }
      common::HttpClientRequest req;
      req.method = "GET";
      req.url = url;
      req.timeout = self->timeout;
      req.headers.emplace_back("Authorization", "Bearer " + *tok);
      req.headers.emplace_back("ConsistencyLevel", "eventual");
      req.headers.emplace_back("Accept", "application/json");
      ++self->n_calls;
      const std::string used = *tok;
      self->http.request(std::move(req), [weak, lookup, url, retried,
                                          used](bot::Result<common::HttpClientResponse> res) {
        auto me = weak.lock();
        if (!me) return;
        if (res && res->status == 401 && !retried) {
          me->tokens.invalidate(used);
          log().info("teams graph: 401, refreshing the token and retrying once");
          return me->page(lookup, url, true);
        }
        me->answered(lookup, res);
      });
    });
  }

  void answered(const std::shared_ptr<Lookup>& lookup,
                const bot::Result<common::HttpClientResponse>& res) {
    if (!res) {
      bot::Error e = res.error();
      e.message = "teams graph groups: " + e.message;
      return lookup->done(std::move(e));
    }
    auto out = interpret_connector_response("groups", res->status, res->header("retry-after"),
                                            res->body, backoff_hint(1, random()), kService);
    if (!out) {
      bot::Error e = out.error();
      if (res->status == 403) {
        e.code = bot::Errc::unauthorized;
        e.message += kGrant;
      } else if (res->status == 404) {
        e.code = bot::Errc::not_found;
        e.message += " (no such user in the directory: a guest from another tenant?)";
      }
      return lookup->done(std::move(e));
    }
    auto page_of = parse_group_page(res->body);
    if (!page_of) return lookup->done(page_of.error());
    for (auto& g : page_of->groups) lookup->groups.push_back(std::move(g));
    if (page_of->next_link.empty()) return lookup->done(std::move(lookup->groups));
    if (++lookup->pages >= graph.max_pages) {
      return lookup->done(bot::make_error(
          bot::Errc::invalid_argument,
          "teams graph groups: the user is in more than " +
              std::to_string(lookup->groups.size()) + " groups (more than " +
              std::to_string(graph.max_pages) + " pages)"));
    }
    if (!same_origin(graph.url, page_of->next_link)) {
      log().warn("teams graph: refused a next page link outside the Graph endpoint");
      return lookup->done(bot::make_error(
          bot::Errc::invalid_argument, "teams graph groups: the next page link points elsewhere"));
    }
    page(lookup, page_of->next_link, false);
  }
};

GraphClient::GraphClient(common::HttpsClient& http, const ConnectorSettings& credentials,
                         GraphSettings graph, bot::Clock& clock)
    : impl_(std::make_shared<Impl>(http, credentials, std::move(graph), clock)) {}

GraphClient::~GraphClient() {
  impl_->deferred.cancel_all();
}

void GraphClient::member_groups(const std::string& object_id, GroupsCallback done) {
  if (object_id.empty()) {
    impl_->later([done = std::move(done)] {
      done(bot::make_error(bot::Errc::invalid_argument,
                           "teams graph groups: the activity carries no Entra object id "
                           "(aadObjectId) for this user"));
    });
    return;
  }
  auto lookup = std::make_shared<Impl::Lookup>();
  lookup->object_id = object_id;
  lookup->done = std::move(done);
  // Deferred, so that `done` never runs inside this call (a cached token answers at once).
  std::weak_ptr<Impl> weak = impl_;
  impl_->later([weak, lookup] {
    if (auto self = weak.lock()) self->page(lookup, member_groups_url(self->graph.url, lookup->object_id), false);
  });
}

std::uint64_t GraphClient::token_requests() const {
  return impl_->tokens.requests();
}

std::uint64_t GraphClient::calls() const {
  return impl_->n_calls;
}

}  // namespace runbot::teams
