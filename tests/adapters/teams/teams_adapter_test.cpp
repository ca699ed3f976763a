// The real bot::Bot behind the TeamsAdapter, on runbot's HTTP server, against FakeBotFramework
// (OpenID metadata, JWKS, token endpoint and Bot Connector on loopback TLS): commands become jobs
// and replies in the right conversation, every JWT failure is a 401 through the endpoint, buttons
// work both ways, redeliveries are handled once, references survive a restart, and the outbox
// retries 429/502 and stops at a blocked conversation; the endpoint also works over runbot's own TLS.
#include "adapters/teams/teams_adapter.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "adapters/common/asio_clock.h"
#include "adapters/common/http_server.h"
#include "adapters/common/https_client.h"
#include "adapters/common/tls_context.h"
#include "adapters/teams/teams_protocol.h"
#include "bot/app/config.h"
#include "bot/bot.h"
#include "tests/adapters/common/run_until.h"
#include "tests/support/fake_bot_framework.h"
#include "tests/support/fake_https_server.h"
#include "tests/support/recording_job_queue.h"

namespace runbot::teams {
namespace {

using namespace std::chrono_literals;
using common::testing::run_until;
using nlohmann::json;
using testing::FakeBotFramework;

constexpr const char* kPersonal = "a:1fake-personal-chat";
constexpr const char* kChannel = "19:0b7f2d8e9a@thread.tacv2";
constexpr const char* kGeneral = "19:team7f3a@thread.tacv2";

json fixture(const std::string& name) {
  std::ifstream in(std::filesystem::path(RUNBOT_TEAMS_TESTDATA_DIR) / "activities" / name);
  EXPECT_TRUE(in.good()) << name;
  return json::parse(in);
}

std::string card_text(const json& activity) {
  std::string out;
  if (!activity.contains("attachments")) return out;
  auto walk = [&out](const json& items, auto& self) -> void {
    for (const auto& b : items) {
      if (b.value("type", "") == "TextBlock") out += b.value("text", "") + "\n";
      if (b.contains("items")) self(b["items"], self);
      if (b.contains("facts")) {
        for (const auto& f : b["facts"])
          out += f.value("title", "") + ": " + f.value("value", "") + "\n";
      }
    }
  };
  for (const auto& a : activity["attachments"]) walk(a["content"]["body"], walk);
  return out;
}

// One runbot process: clock, job queue, outbox, bot, Teams adapter and HTTP server. Destroying it
// (in reverse order, the clock last) cancels everything it scheduled, like a process exit.
struct Process {
  // With `tls`, runbot's HTTP server terminates TLS itself with the test CA's server certificate.
  // Without `attach_now`, the endpoint is live but the adapter is not started until attach(), as
  // in bot/app/runtime.cpp while the Kafka consumers join.
  Process(boost::asio::io_context& io, const TeamsSettings& settings, const std::string& extra_yaml,
          bot::Registry registry, const testing::TestCa* tls = nullptr, bool attach_now = true)
      : clock(io) {
    auto cfg = app::parse_config(app::demo_config_yaml() + extra_yaml, {});
    EXPECT_TRUE(cfg) << cfg.error().message;
    config = *cfg;
    outbox = std::make_unique<bot::Outbox>(config.outbox, clock, metrics);
    outbox->set_platform_settings("teams", config.teams_outbox);
    the_bot = std::make_unique<bot::Bot>(config.bot, std::move(registry), clock, jobs, *outbox,
                                         metrics, nullptr);
    // As the composition root does (bot/app/config.cpp): look up e-mails and groups when a
    // binding needs them.
    TeamsSettings s = settings;
    s.adapter.lookup_email = bot::identity_needs(config.bot.policy, "teams").email;
    s.adapter.lookup_groups = bot::identity_needs(config.bot.policy, "teams").groups;
    auto created = TeamsAdapter::create(io, s);
    EXPECT_TRUE(created) << created.error().message;
    adapter = std::move(*created);
    bot::Bot* b = the_bot.get();
    adapter->set_reference_store(
        {[b] {
           std::vector<std::pair<std::string, std::string>> out;
           for (const auto& kv : b->registry().adapter_states()) out.push_back(kv);
           return out;
         },
         [b](const std::string& k, const std::string& v) { b->set_adapter_state(k, v); }});
    common::HttpServerSettings hs;
    hs.port = 0;
    if (tls) {
      hs.tls_cert_file = tls->cert_file;
      hs.tls_key_file = tls->key_file;
    }
    http = std::make_unique<common::HttpServer>(io, hs);
    adapter->route(*http);
    auto port = http->start();
    EXPECT_TRUE(port) << port.error().message;
    url = std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(*port) +
          settings.adapter.messaging_path;
    if (attach_now) attach();
  }
  // Starts the adapter (Bot::attach) and the bot, as runtime.cpp's start_bot does.
  void attach() {
    the_bot->attach(*adapter);
    the_bot->start();
  }
  ~Process() {
    the_bot->stop();
    adapter->stop();
    http->stop();
  }

  app::Config config;
  common::AsioClock clock;
  bot::Metrics metrics;
  testing::RecordingJobQueue jobs{clock};
  std::unique_ptr<bot::Outbox> outbox;
  std::unique_ptr<bot::Bot> the_bot;
  std::unique_ptr<TeamsAdapter> adapter;
  std::unique_ptr<common::HttpServer> http;
  std::string url;
};

class TeamsBotFlow : public ::testing::Test {
 protected:
  TeamsBotFlow() { fake.start(); }
  ~TeamsBotFlow() override {
    run.reset();
    EXPECT_TRUE(fake.problems.empty()) << ::testing::PrintToString(fake.problems);
  }

  TeamsSettings settings() const {
    TeamsSettings s;
    s.auth.app_id = fake.settings().app_id;
    s.auth.openid_metadata_url = fake.openid_metadata_url();
    s.auth.min_refresh_interval = 0s;  // every unknown kid may refetch at once,
    s.auth.unknown_kid_ttl = 0s;       // even one that was not there at the last fetch
    s.connector.app_id = fake.settings().app_id;
    s.connector.app_password = fake.settings().app_password;
    s.connector.tenant_id = fake.settings().tenant_id;
    s.connector.token_url = fake.token_url();
    s.graph.url = fake.graph_url();
    s.graph.scope = fake.settings().graph_scope;
    s.adapter.ca_file = ca.ca_file;
    return s;
  }

  void start(const std::string& extra_yaml = "", bot::Registry registry = {}) {
    run = std::make_unique<Process>(io, settings(), extra_yaml, std::move(registry),
                                    https ? &ca : nullptr);
  }
  // The endpoint is live, the adapter not started yet (run->attach() starts it).
  void start_unattached(const TeamsSettings& s) {
    run = std::make_unique<Process>(io, s, "", bot::Registry{}, nullptr, /*attach_now=*/false);
  }

  // Stops the process and starts a new one from the registry snapshot the old one would have saved.
  void restart(const std::string& extra_yaml = "") {
    const std::string snapshot = run->the_bot->registry().snapshot();
    run.reset();
    auto restored = bot::Registry::restore(snapshot);
    ASSERT_TRUE(restored) << restored.error().message;
    start(extra_yaml, std::move(*restored));
  }

  struct Answer {
    int status = -1;
    std::string body;
  };

  Answer deliver(const json& activity, const std::string& authorization) {
    Answer a;
    bool done = false;
    auto answered = [&](int status, std::string body) {
      a.status = status;
      a.body = std::move(body);
      done = true;
    };
    if (https) {
      // As the Bot Connector does for a public HTTPS endpoint.
      common::HttpClientRequest req;
      req.url = run->url;
      req.headers = {{"Content-Type", "application/json; charset=utf-8"},
                     {"Authorization", authorization}};
      req.body = activity.dump();
      bot_connector_side.request(std::move(req), [&](bot::Result<common::HttpClientResponse> r) {
        answered(r ? r->status : 0, r ? r->body : r.error().message);
      });
    } else {
      fake.post_activity(run->url, activity, authorization, answered);
    }
    EXPECT_TRUE(run_until(
        io, [&] { return done; }, 10s))
        << "no answer from the endpoint";
    return a;
  }
  Answer deliver(const json& activity) {
    return deliver(activity, "Bearer " + fake.token_for(activity));
  }

  // Posts `activity` with a valid token and returns once runbot has read the request (so that
  // activities arrive in the order posted); the answer lands in `out` later (status -1 until then).
  void post_in_order(const json& activity, Answer& out) {
    const auto before = run->adapter->stats().requests;
    fake.post_activity(run->url, activity, "Bearer " + fake.token_for(activity),
                       [&out](int status, std::string body) { out = {status, std::move(body)}; });
    EXPECT_TRUE(run_until(
        io, [&] { return run->adapter->stats().requests > before; }, 5s))
        << "the request did not reach runbot";
  }

  static bool all_answered(const std::vector<Answer>& answers) {
    return std::all_of(answers.begin(), answers.end(),
                       [](const Answer& a) { return a.status >= 0; });
  }

  // How many jobs were made for each environment.
  std::map<std::string, int> jobs_per_env() const {
    std::map<std::string, int> out;
    for (const auto& j : run->jobs.jobs) ++out[j.env.str()];
    return out;
  }

  // A channel post mentioning the bot (the §3.3 fixture, pointed at the fake).
  json channel_activity(const std::string& text, const std::string& id) const {
    json a = fixture("channel-message-mention-reconstructed.json");
    const std::string bot = "28:" + fake.settings().app_id;
    a["id"] = id;
    a["serviceUrl"] = fake.service_url();
    a["recipient"]["id"] = bot;
    a["entities"][0]["mentioned"]["id"] = bot;
    a["text"] = "<at>runbot</at> " + text;
    a["conversation"]["id"] = std::string(kChannel) + ";messageid=" + id;
    return a;
  }

  json installed_in_team() const {
    json a = fixture("conversation-update-bot-added-to-team-reconstructed.json");
    const std::string bot = "28:" + fake.settings().app_id;
    a["serviceUrl"] = fake.service_url();
    a["recipient"]["id"] = bot;
    a["membersAdded"][0]["id"] = bot;
    return a;
  }

  json invoke(const std::string& action, const std::string& value) const {
    json a = fake.make_activity("", kPersonal);
    a.erase("text");
    a["type"] = "invoke";
    a["name"] = "adaptiveCard/action";
    a["value"] = {{"action",
                   {{"type", "Action.Execute"},
                    {"verb", action},
                    {"data", {{"action", action}, {"value", value}}}}},
                  {"trigger", "manual"}};
    return a;
  }

  json submit(const std::string& action, const std::string& value) const {
    json a = fake.make_activity("", kPersonal);
    a.erase("text");
    a["value"] = {{"action", action}, {"value", value}};
    return a;
  }

  // Connector sends (POST …/activities) into `conversation`, in order.
  std::vector<FakeBotFramework::Call> sends_to(const std::string& conversation) const {
    std::vector<FakeBotFramework::Call> out;
    for (const auto& c : fake.calls) {
      if (c.method == "POST" && c.segments.size() == 2 && c.segments[0] == conversation &&
          c.segments[1] == "activities") {
        out.push_back(c);
      }
    }
    return out;
  }

  bool sent_text(const std::string& conversation, const std::string& part) const {
    for (const auto& c : sends_to(conversation)) {
      if (c.status / 100 == 2 && card_text(c.body).find(part) != std::string::npos) return true;
    }
    return false;
  }

  bool wait_for_text(const std::string& conversation, const std::string& part) {
    return run_until(
        io, [&] { return sent_text(conversation, part); }, 10s);
  }

  // Waits until the outbox has nothing left for `conversation` (delivered or given up).
  bool settled(const std::string& conversation) {
    return run_until(
        io, [&] { return run->outbox->pending("teams", bot::ChannelId{conversation}) == 0; }, 10s);
  }

  // A token for `activity` with `claims` changed.
  std::string token_with(const json& activity, const json& changes) const {
    json claims = fake.claims_for(activity);
    for (const auto& [k, v] : changes.items()) claims[k] = v;
    return "Bearer " + fake.sign(claims);
  }

  static std::shared_ptr<common::TlsContext> trusting(const testing::TestCa& ca) {
    auto t = common::TlsContext::create(ca.ca_file);
    if (!t) throw std::runtime_error(t.error().message);
    return *t;
  }

  testing::TestCa ca = testing::TestCa::make();
  boost::asio::io_context io;
  FakeBotFramework fake{io, ca};
  bool https = false;  // runbot's endpoint serves TLS itself (http.tls_cert_file / tls_key_file)
  common::HttpsClient bot_connector_side{io, trusting(ca)};
  std::unique_ptr<Process> run;
};

// ---- commands ----

TEST_F(TeamsBotFlow, PersonalChatCommandBecomesAJobAndIsAnsweredThere) {
  start();
  const Answer a = deliver(fake.make_activity("up front-end 123", kPersonal));
  EXPECT_EQ(a.status, 200);
  ASSERT_TRUE(run_until(io, [&] { return run->jobs.jobs.size() == 1; }));
  EXPECT_EQ(run->jobs.jobs[0].verb, bot::JobVerb::up);
  EXPECT_EQ(run->jobs.jobs[0].env.str(), "front-end-pr-123");
  EXPECT_EQ(run->jobs.jobs[0].requested_by.str(), "29:1alice-fake");
  ASSERT_TRUE(wait_for_text(kPersonal, "Creating front-end-pr-123"));
  EXPECT_EQ(run->adapter->stats().handled, 1u);
}

TEST_F(TeamsBotFlow, TheBotConnectorReachesRunbotsOwnHttpsEndpoint) {
  https = true;
  start();
  ASSERT_EQ(run->url.rfind("https://", 0), 0u) << run->url;
  const Answer a = deliver(fake.make_activity("up front-end 124", kPersonal));
  EXPECT_EQ(a.status, 200) << a.body;
  ASSERT_TRUE(run_until(io, [&] { return run->jobs.jobs.size() == 1; }));
  EXPECT_EQ(run->jobs.jobs[0].env.str(), "front-end-pr-124");
  ASSERT_TRUE(wait_for_text(kPersonal, "Creating front-end-pr-124"));
  // The JWT is still checked over TLS.
  const Answer forged = deliver(fake.make_activity("up front-end 125", kPersonal), "Bearer nope");
  EXPECT_EQ(forged.status, 401);
  EXPECT_EQ(run->jobs.jobs.size(), 1u);
}

TEST_F(TeamsBotFlow, ChannelMentionIsAnsweredInItsThreadAndTheCardStartsANewThread) {
  start();
  const json activity = channel_activity("up front-end 123", "1714557600123");
  ASSERT_EQ(deliver(activity).status, 200);
  ASSERT_TRUE(run_until(io, [&] { return run->jobs.jobs.size() == 1; }));
  const std::string thread = std::string(kChannel) + ";messageid=1714557600123";
  ASSERT_TRUE(wait_for_text(thread, "Creating front-end-pr-123"))
      << "the answer goes into the mention's thread";

  // The environment's status card is a proactive new thread in the channel; its replies follow it.
  ASSERT_TRUE(run_until(
      io,
      [&] {
        for (const auto& c : fake.calls) {
          if (c.method == "POST" && c.segments.empty() && c.status == 201) return true;
        }
        return false;
      },
      10s));
  json created;
  for (const auto& c : fake.calls) {
    if (c.method == "POST" && c.segments.empty()) created = c.body;
  }
  EXPECT_EQ(created["channelData"]["channel"]["id"], kChannel);
  EXPECT_EQ(created["isGroup"], true);
  EXPECT_EQ(created["tenantId"], "b28f1c2e-0000-4000-8000-00000000c0de");
  EXPECT_NE(card_text(created["activity"]).find("front-end-pr-123"), std::string::npos)
      << created.dump();
  ASSERT_TRUE(settled(kChannel));
  bool reply_in_card_thread = false;
  for (const auto& c : fake.calls) {
    if (c.method == "POST" && c.segments.size() == 2 &&
        c.segments[0].rfind(std::string(kChannel) + ";messageid=", 0) == 0 &&
        c.segments[0] != thread) {
      reply_in_card_thread = true;
    }
  }
  EXPECT_TRUE(reply_in_card_thread) << "the announcement follows the card in its own thread";
}

TEST_F(TeamsBotFlow, AMentionWithoutACommandListsTheCommands) {
  start();
  ASSERT_EQ(deliver(channel_activity("", "1714557600200")).status, 200);
  ASSERT_TRUE(wait_for_text(std::string(kChannel) + ";messageid=1714557600200", "Commands:"));
  EXPECT_TRUE(run->jobs.jobs.empty());
}

// ---- authentication through the endpoint ----

TEST_F(TeamsBotFlow, EveryBadTokenIsRefusedWith401AndNothingHappens) {
  start();
  const json activity = fake.make_activity("up front-end 1", kPersonal);
  struct Case {
    const char* what;
    std::string authorization;
  };
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  const std::vector<Case> cases = {
      {"forged signature", "Bearer " + fake.forge(fake.claims_for(activity))},
      {"wrong audience", token_with(activity, {{"aud", "00000000-0000-0000-0000-000000000000"}})},
      {"wrong issuer", token_with(activity, {{"iss", "https://evil.example.com"}})},
      {"expired",
       token_with(activity, {{"exp", now_s - 3600}, {"nbf", now_s - 7200}, {"iat", now_s - 7200}})},
      {"other service url",
       token_with(activity, {{"serviceurl", "https://evil.example.com/amer/"}})},
      {"missing header", ""},
      {"not bearer", "Basic dXNlcjpwYXNz"},
  };
  for (const auto& c : cases) {
    const Answer a = deliver(activity, c.authorization);
    EXPECT_EQ(a.status, 401) << c.what;
    EXPECT_EQ(a.body.find("eyJ"), std::string::npos)
        << c.what << ": the answer must not echo the token";
  }
  io.run_for(100ms);
  EXPECT_TRUE(run->jobs.jobs.empty());
  EXPECT_TRUE(fake.calls.empty()) << "nothing may be sent for a refused activity";
  EXPECT_EQ(run->adapter->stats().rejected, cases.size());
  EXPECT_FALSE(run->adapter->has_reference(kPersonal)) << "a refused activity leaves no reference";
  // The same activity with a good token is then accepted.
  EXPECT_EQ(deliver(activity).status, 200);
  EXPECT_TRUE(run_until(io, [&] { return run->jobs.jobs.size() == 1; }));
}

TEST_F(TeamsBotFlow, BodyThatIsNotJsonIs400BeforeAnyTokenCheck) {
  start();
  Answer a;
  bool done = false;
  testing::plain_http_request(io, "POST", run->url, {{"Content-Type", "application/json"}},
                              "<html>", [&](int status, std::string body) {
                                a = {status, std::move(body)};
                                done = true;
                              });
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(fake.keys_requests() + fake.metadata_requests() > 0, true)
      << "keys are prefetched at start";
  EXPECT_EQ(run->adapter->stats().malformed, 1u);
}

TEST_F(TeamsBotFlow, UnknownKeyIdRefreshesTheKeysThenAccepts) {
  start();
  ASSERT_EQ(deliver(fake.make_activity("help", kPersonal)).status, 200);
  const int fetched = fake.keys_requests();
  const std::string kid = fake.add_unpublished_key();
  const json activity = fake.make_activity("up front-end 5", kPersonal);
  // Signed with a key Teams has not published yet: refused after a refetch that does not know it.
  EXPECT_EQ(deliver(activity, "Bearer " + fake.sign(fake.claims_for(activity), kid)).status, 401);
  EXPECT_GT(fake.keys_requests(), fetched);
  // Published now (a rotation): the unknown kid makes runbot refetch and accept.
  fake.publish_key(kid);
  const int before = fake.keys_requests();
  EXPECT_EQ(deliver(activity, "Bearer " + fake.sign(fake.claims_for(activity), kid)).status, 200);
  EXPECT_GT(fake.keys_requests(), before);
  EXPECT_TRUE(run_until(io, [&] { return run->jobs.jobs.size() == 1; }));
}

TEST_F(TeamsBotFlow, KeyRotationAcceptsTheNewKeyAndDropsTheRetiredOne) {
  start();
  const std::string old_kid = fake.current_kid();
  ASSERT_EQ(deliver(fake.make_activity("help", kPersonal)).status, 200);
  const std::string new_kid = fake.rotate_key(/*keep_old=*/false);
  ASSERT_NE(new_kid, old_kid);
  const json next = fake.make_activity("up front-end 6", kPersonal);
  EXPECT_EQ(deliver(next).status, 200) << "signed with the new key";
  const json stale = fake.make_activity("up front-end 7", kPersonal);
  EXPECT_EQ(deliver(stale, "Bearer " + fake.sign(fake.claims_for(stale), old_kid)).status, 401)
      << "the retired key is no longer served";
  EXPECT_TRUE(run_until(io, [&] { return run->jobs.jobs.size() == 1; }));
  io.run_for(100ms);
  ASSERT_EQ(run->jobs.jobs.size(), 1u);
  EXPECT_EQ(run->jobs.jobs[0].env.str(), "front-end-pr-6");
}

// ---- redelivery ----

TEST_F(TeamsBotFlow, RedeliveredActivityIsHandledOnce) {
  start();
  const json activity = fake.make_activity("up front-end 8", kPersonal);
  EXPECT_EQ(deliver(activity).status, 200);
  EXPECT_EQ(deliver(activity).status, 200) << "Teams retries after 15 s: acknowledge again";
  ASSERT_TRUE(wait_for_text(kPersonal, "Creating front-end-pr-8"));
  io.run_for(200ms);
  EXPECT_EQ(run->jobs.jobs.size(), 1u);
  EXPECT_EQ(run->adapter->stats().duplicates, 1u);
  int answers = 0;
  for (const auto& c : sends_to(kPersonal))
    answers += card_text(c.body).find("Creating front-end-pr-8") != std::string::npos;
  EXPECT_EQ(answers, 1);
}

// ---- delivery under faults: activities that arrive before the adapter is started ----
// runtime.cpp routes the endpoint and starts the HTTP server before it starts the chat adapters
// (once the Kafka consumers have joined), and the Bot Connector does not resend an activity
// refused with 503. Each test prints
// "delivery-under-faults: case=… sent=… lost=… doubled=…".

TEST_F(TeamsBotFlow, ActivitiesBeforeStartAreHeldThenEachRunsOnceInArrivalOrder) {
  start_unattached(settings());
  constexpr int kSent = 50;
  std::vector<Answer> answers(kSent);
  std::vector<std::string> envs;
  for (int i = 0; i < kSent; ++i) {
    envs.push_back("front-end-pr-" + std::to_string(1000 + i));
    // One chat each, so that every answer has its own outbox queue.
    post_in_order(fake.make_activity("up front-end " + std::to_string(1000 + i),
                                     "a:early-chat-" + std::to_string(i)),
                  answers[static_cast<std::size_t>(i)]);
  }
  run_until(io, [&] { return run->adapter->stats().early_held == kSent; }, 5s);
  EXPECT_EQ(std::count_if(answers.begin(), answers.end(),
                          [](const Answer& a) { return a.status >= 0; }),
            0)
      << "nothing is answered before start()";
  EXPECT_TRUE(run->jobs.jobs.empty());

  run->attach();
  EXPECT_TRUE(run_until(io, [&] { return all_answered(answers); }, 10s));
  run_until(io, [&] { return run->jobs.jobs.size() >= static_cast<std::size_t>(kSent); }, 10s);
  // Every command is answered in its chat.
  run_until(
      io,
      [&] {
        for (int i = 0; i < kSent; ++i) {
          const std::string chat = "a:early-chat-" + std::to_string(i);
          if (!sent_text(chat, "Creating " + envs[static_cast<std::size_t>(i)])) return false;
        }
        return true;
      },
      15s);
  run_until(io, [&] { return run->outbox->pending() == 0; }, 10s);

  const auto jobs = jobs_per_env();
  int lost = 0, doubled = 0;
  for (int i = 0; i < kSent; ++i) {
    const auto& env = envs[static_cast<std::size_t>(i)];
    const int ran = jobs.count(env) ? jobs.at(env) : 0;
    const bool answered = sent_text("a:early-chat-" + std::to_string(i), "Creating " + env);
    if (answers[static_cast<std::size_t>(i)].status != 200 || ran == 0 || !answered) ++lost;
    if (ran > 1) ++doubled;
  }
  std::cout << "delivery-under-faults: case=early-activities sent=" << kSent << " lost=" << lost
            << " doubled=" << doubled << std::endl;
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(doubled, 0);
  std::vector<std::string> order;
  for (const auto& j : run->jobs.jobs) order.push_back(j.env.str());
  EXPECT_EQ(order, envs) << "handed on in arrival order";
  EXPECT_EQ(run->adapter->stats().handled, static_cast<std::uint64_t>(kSent));
  EXPECT_EQ(run->adapter->stats().early_refused, 0u);
}

TEST_F(TeamsBotFlow, AnInvokeBeforeStartWaitsAndIsAnsweredInTheBodyAfterTheMessageBeforeIt) {
  start_unattached(settings());
  std::vector<Answer> answers(2);
  post_in_order(fake.make_activity("up front-end 2000", kPersonal), answers[0]);
  post_in_order(invoke("extend", "front-end-pr-2000 4h"), answers[1]);
  run->attach();
  ASSERT_TRUE(run_until(io, [&] { return all_answered(answers); }, 10s));
  EXPECT_EQ(answers[0].status, 200);
  ASSERT_EQ(answers[1].status, 200) << answers[1].body;
  const json body = json::parse(answers[1].body, nullptr, false);
  EXPECT_EQ(body.value("type", ""), "application/vnd.microsoft.activity.message")
      << answers[1].body;
  const std::string toast = body.value("value", "");
  EXPECT_NE(toast.find("front-end-pr-2000"), std::string::npos) << toast;
  EXPECT_EQ(toast.find("no environment"), std::string::npos)
      << "the click ran before the message that arrived first: " << toast;
  ASSERT_TRUE(run_until(io, [&] { return run->jobs.jobs.size() == 1; }));
  EXPECT_EQ(run->jobs.jobs[0].env.str(), "front-end-pr-2000");
  EXPECT_EQ(run->adapter->stats().invokes, 1u);
}

TEST_F(TeamsBotFlow, ActivitiesOverTheEarlyBoundsGet503AndNeverRun) {
  TeamsSettings s = settings();
  s.adapter.early_capacity = 4;
  s.adapter.early_hold = 1500ms;
  s.adapter.early_invoke_deadline = 1000ms;
  start_unattached(s);
  // Four held (three messages, then a click), two more over the capacity.
  std::vector<Answer> answers(6);
  std::vector<int> answer_order;
  post_in_order(fake.make_activity("up front-end 2101", kPersonal), answers[0]);
  post_in_order(fake.make_activity("up front-end 2102", kPersonal), answers[1]);
  post_in_order(fake.make_activity("up front-end 2103", kPersonal), answers[2]);
  post_in_order(invoke("extend", "front-end-pr-2101 4h"), answers[3]);
  post_in_order(fake.make_activity("up front-end 2105", kPersonal), answers[4]);
  post_in_order(fake.make_activity("up front-end 2106", kPersonal), answers[5]);
  EXPECT_TRUE(run_until(
      io,
      [&] {
        for (int i = 0; i < 6; ++i) {
          if (answers[static_cast<std::size_t>(i)].status >= 0 &&
              std::find(answer_order.begin(), answer_order.end(), i) == answer_order.end())
            answer_order.push_back(i);
        }
        return all_answered(answers);
      },
      5s));
  // Nobody started the adapter within the bounds: every one was refused, the click first (its
  // deadline is the shorter), the two over the capacity at once.
  for (const auto& a : answers) EXPECT_EQ(a.status, 503) << a.body;
  ASSERT_EQ(answer_order.size(), 6u);
  EXPECT_EQ(std::vector<int>(answer_order.begin(), answer_order.begin() + 2),
            (std::vector<int>{4, 5}));
  EXPECT_EQ(answer_order[2], 3) << "the click is answered by its deadline";
  EXPECT_EQ(run->adapter->stats().early_held, 4u);
  EXPECT_EQ(run->adapter->stats().early_refused, 6u);

  run->attach();
  const Answer after = deliver(fake.make_activity("up front-end 2107", kPersonal));
  EXPECT_EQ(after.status, 200);
  ASSERT_TRUE(run_until(io, [&] { return run->jobs.jobs.size() >= 1; }));
  ASSERT_TRUE(run_until(io, [&] { return run->outbox->pending() == 0; }));

  // Lost: answered 200 but never run, or never answered. Doubled: run twice, or run although it
  // was refused (the Bot Connector would count it as failed).
  const auto jobs = jobs_per_env();
  const std::vector<std::string> envs = {"front-end-pr-2101", "front-end-pr-2102",
                                         "front-end-pr-2103", "",
                                         "front-end-pr-2105", "front-end-pr-2106"};
  int lost = 0, doubled = 0;
  for (std::size_t i = 0; i < envs.size(); ++i) {
    const int ran = envs[i].empty() ? 0 : (jobs.count(envs[i]) ? jobs.at(envs[i]) : 0);
    if (answers[i].status < 0 || (answers[i].status == 200 && ran == 0)) ++lost;
    if (ran > 1 || (answers[i].status != 200 && ran > 0)) ++doubled;
  }
  EXPECT_EQ(run->adapter->stats().invokes, 0u) << "the refused click did not run";
  std::cout << "delivery-under-faults: case=early-over-bounds sent=" << envs.size()
            << " lost=" << lost << " doubled=" << doubled << std::endl;
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(doubled, 0);
  EXPECT_EQ(jobs, (std::map<std::string, int>{{"front-end-pr-2107", 1}}));
}

// ---- delivery under faults: key rotation ----

TEST_F(TeamsBotFlow, KeyRotationRightAfterAFetchLosesNoActivity) {
  TeamsSettings s = settings();
  // The shipped floor and negative cache, not the test's "refetch at once".
  s.auth.min_refresh_interval = TeamsAuthSettings{}.min_refresh_interval;
  s.auth.unknown_kid_ttl = TeamsAuthSettings{}.unknown_kid_ttl;
  run = std::make_unique<Process>(io, s, "", bot::Registry{});
  constexpr int kSent = 20;
  std::vector<Answer> answers;
  std::vector<std::string> envs;
  int fetches_before_rotation = 0;
  for (int i = 0; i < kSent; ++i) {
    if (i == kSent / 2) {
      // The keys were fetched at start, moments ago; the Bot Framework now signs with a new one.
      fetches_before_rotation = fake.keys_requests();
      fake.rotate_key(/*keep_old=*/false);
    }
    envs.push_back("front-end-pr-" + std::to_string(3000 + i));
    answers.push_back(
        deliver(fake.make_activity("up front-end " + std::to_string(3000 + i), kPersonal)));
  }
  run_until(io, [&] { return run->jobs.jobs.size() >= static_cast<std::size_t>(kSent); }, 10s);
  const auto jobs = jobs_per_env();
  int lost = 0, doubled = 0;
  for (int i = 0; i < kSent; ++i) {
    const auto& env = envs[static_cast<std::size_t>(i)];
    const int ran = jobs.count(env) ? jobs.at(env) : 0;
    if (answers[static_cast<std::size_t>(i)].status != 200 || ran == 0) ++lost;
    if (ran > 1) ++doubled;
  }
  std::cout << "delivery-under-faults: case=key-rotation sent=" << kSent << " lost=" << lost
            << " doubled=" << doubled << std::endl;
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(doubled, 0);
  EXPECT_EQ(answers[kSent / 2].status, 200) << "the very next activity after the rotation";
  EXPECT_EQ(fake.keys_requests() - fetches_before_rotation, 1) << "exactly one extra JWKS fetch";
  EXPECT_EQ(run->adapter->stats().rejected, 0u);
}

// ---- buttons ----

TEST_F(TeamsBotFlow, ExecuteAndSubmitButtonsTearDownThroughTheConfirmation) {
  start();
  ASSERT_EQ(deliver(fake.make_activity("up front-end 9", kPersonal)).status, 200);
  ASSERT_TRUE(run_until(io, [&] { return run->jobs.jobs.size() == 1; }));

  // Action.Execute "Tear down": answered in the HTTP body; the confirmation card with its Yes/No
  // buttons is posted into the chat, since a toast cannot carry buttons.
  const Answer a = deliver(invoke("down", "front-end-pr-9"));
  ASSERT_EQ(a.status, 200);
  const json body = json::parse(a.body);
  EXPECT_EQ(body["statusCode"], 200);
  EXPECT_EQ(body["type"], "application/vnd.microsoft.activity.message");
  EXPECT_NE(body["value"].get<std::string>().find("Tear down front-end-pr-9?"), std::string::npos)
      << a.body;
  ASSERT_TRUE(wait_for_text(kPersonal, "Tear down front-end-pr-9?"));
  json confirmation;
  for (const auto& c : sends_to(kPersonal)) {
    if (card_text(c.body).find("Tear down front-end-pr-9?") != std::string::npos)
      confirmation = c.body;
  }
  const json& actions = confirmation["attachments"][0]["content"]["actions"];
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0]["data"], (json{{"action", "confirm"}, {"value", "yes"}}));

  // Action.Submit "Yes" (an older client using the fallback): a message with value, no text.
  EXPECT_EQ(deliver(submit("confirm", "yes")).status, 200);
  ASSERT_TRUE(run_until(io, [&] { return run->jobs.jobs.size() == 2; }));
  EXPECT_EQ(run->jobs.jobs[1].verb, bot::JobVerb::down);
  EXPECT_EQ(run->jobs.jobs[1].env.str(), "front-end-pr-9");
}

TEST_F(TeamsBotFlow, ExecuteButtonIsAnsweredInTheBodyWithTheCommandsReply) {
  start();
  const Answer a = deliver(invoke("extend", "nope-pr-1 4h"));
  ASSERT_EQ(a.status, 200);
  const json body = json::parse(a.body);
  EXPECT_EQ(body["type"], "application/vnd.microsoft.activity.message");
  EXPECT_NE(body["value"].get<std::string>().find("nope-pr-1"), std::string::npos) << a.body;
  const Answer open = deliver(invoke("open", "front-end-pr-1"));
  EXPECT_EQ(json::parse(open.body)["value"], "Nothing to do for this button.");
  EXPECT_EQ(run->adapter->stats().invokes, 2u);
}

// ---- who is asking: role bindings by e-mail ----

const char* kEmailPolicy = R"(
policy:
  bindings:
    - {role: developer, emails: [dev@acme.dev]}
)";
constexpr const char* kDev = "29:1dev-dana";
constexpr const char* kOther = "29:1other-olaf";

json from(const std::string& user, json activity) {
  activity["from"]["id"] = user;
  activity["from"]["name"] = user.substr(4);
  activity["from"].erase("aadObjectId");
  return activity;
}

std::string thread_of(const std::string& id) {
  return std::string(kChannel) + ";messageid=" + id;
}

// Member lookups (GET …/members/{user}) the fake saw, as "conversation|user".
std::vector<std::string> member_lookups(const FakeBotFramework& fake) {
  std::vector<std::string> out;
  for (const auto& c : fake.calls) {
    if (c.method == "GET" && c.segments.size() == 3 && c.segments[1] == "members")
      out.push_back(c.segments[0] + "|" + c.segments[2]);
  }
  return out;
}

TEST_F(TeamsBotFlow, AUserBoundByEmailMayCreateAnEnvironmentWhileAnotherInTheChannelIsDenied) {
  // Dana has only a userPrincipalName; Olaf's `email` wins over a UPN that would match.
  fake.add_member(kChannel, kDev, "", "dev@acme.dev");
  fake.add_member(kChannel, kOther, "other@acme.dev", "dev@acme.dev");
  start(kEmailPolicy);

  ASSERT_EQ(deliver(from(kDev, channel_activity("up front-end 1", "1714557601001"))).status, 200);
  ASSERT_TRUE(wait_for_text(thread_of("1714557601001"), "Creating front-end-pr-1"));
  ASSERT_EQ(run->jobs.jobs.size(), 1u);
  EXPECT_EQ(run->jobs.jobs[0].requested_by.str(), kDev);

  ASSERT_EQ(deliver(from(kOther, channel_activity("up front-end 2", "1714557601002"))).status, 200);
  ASSERT_TRUE(wait_for_text(thread_of("1714557601002"), "needs the developer role"));
  EXPECT_FALSE(sent_text(thread_of("1714557601002"), "looked up")) << "the lookup worked";
  EXPECT_EQ(run->jobs.jobs.size(), 1u);

  // Dana's second command is served from the cache.
  ASSERT_EQ(deliver(from(kDev, channel_activity("up docs 3", "1714557601003"))).status, 200);
  ASSERT_TRUE(wait_for_text(thread_of("1714557601003"), "Creating docs-pr-3"));
  EXPECT_EQ(run->jobs.jobs.size(), 2u);
  EXPECT_EQ(member_lookups(fake), (std::vector<std::string>{std::string(kChannel) + "|" + kDev,
                                                            std::string(kChannel) + "|" + kOther}))
      << "one lookup per user, in the channel (not the thread) they wrote in";
  EXPECT_EQ(fake.member_requests(), 2);
}

TEST_F(TeamsBotFlow, AFailedMemberLookupIsNamedInTheDenialAndTheCommandIsStillAnswered) {
  start(kEmailPolicy);
  // Not a member the connector knows: 404.
  ASSERT_EQ(deliver(from(kDev, channel_activity("up front-end 1", "1714557602001"))).status, 200);
  ASSERT_TRUE(wait_for_text(thread_of("1714557602001"), "could not be looked up"));
  EXPECT_TRUE(sent_text(thread_of("1714557602001"), "not a member of this conversation"));

  // The connector fails: 500.
  fake.add_member(kChannel, kOther, "dev@acme.dev");
  fake.fail_next(500);
  ASSERT_EQ(deliver(from(kOther, channel_activity("up front-end 2", "1714557602002"))).status, 200);
  ASSERT_TRUE(wait_for_text(thread_of("1714557602002"), "could not be looked up"));
  EXPECT_TRUE(sent_text(thread_of("1714557602002"), "HTTP 500"));
  EXPECT_TRUE(sent_text(thread_of("1714557602002"), "needs the developer role"));
  EXPECT_TRUE(run->jobs.jobs.empty());
  EXPECT_EQ(fake.member_requests(), 2);
}

TEST_F(TeamsBotFlow, NoLookupWhenNoBindingForTeamsNamesAnEmailOrAGroup) {
  fake.add_member(kChannel, kDev, "dev@acme.dev");
  start(std::string("policy:\n  bindings:\n    - {role: developer, platform: teams, users: [\"") +
        kDev + "\"]}\n    - {role: operator, platform: slack, groups: [sre]}\n");
  ASSERT_EQ(deliver(from(kDev, channel_activity("up front-end 1", "1714557603001"))).status, 200);
  ASSERT_TRUE(wait_for_text(thread_of("1714557603001"), "Creating front-end-pr-1"));
  ASSERT_EQ(deliver(from(kOther, channel_activity("up front-end 2", "1714557603002"))).status, 200);
  ASSERT_TRUE(wait_for_text(thread_of("1714557603002"), "needs the developer role"));
  EXPECT_FALSE(sent_text(thread_of("1714557603002"), "looked up"));
  EXPECT_EQ(fake.member_requests(), 0);
  EXPECT_EQ(fake.graph_requests(), 0);
  EXPECT_TRUE(member_lookups(fake).empty());
}

// ---- role bindings by Entra group (Microsoft Graph) ----

const char* kGroupPolicy = R"(
policy:
  bindings:
    - {role: developer, platform: teams, groups: [sre]}
    - {role: developer, groups: ["5b1c2d3e-0000-4000-8000-00000000f00d"]}
    - {role: developer, emails: [nobody@acme.dev]}
)";

json from_entra(const std::string& user, const std::string& object_id, json activity) {
  activity = from(user, std::move(activity));
  activity["from"]["aadObjectId"] = object_id;
  return activity;
}

TEST_F(TeamsBotFlow, UsersBoundByGroupNameOrIdMayCreateWhileAnotherInTheChannelIsDenied) {
  constexpr const char* kPia = "29:1platform-pia";
  fake.set_groups("oid-dana", {{"0a0a0a0a-0000-4000-8000-000000000001", "sre"}});
  fake.set_groups("oid-olaf", {{"0a0a0a0a-0000-4000-8000-000000000002", "web"}});
  // Pia's group is bound by id; its name is withheld (an app with User.Read.All only).
  fake.set_groups("oid-pia", {{"5b1c2d3e-0000-4000-8000-00000000f00d", ""}});
  fake.add_member(kChannel, kDev, "dana@acme.dev");
  fake.add_member(kChannel, kOther, "olaf@acme.dev");
  fake.add_member(kChannel, kPia, "pia@acme.dev");
  start(kGroupPolicy);

  ASSERT_EQ(deliver(from_entra(kDev, "oid-dana", channel_activity("up front-end 1", "1714557604001"))).status, 200);
  ASSERT_TRUE(wait_for_text(thread_of("1714557604001"), "Creating front-end-pr-1"));
  ASSERT_EQ(deliver(from_entra(kOther, "oid-olaf", channel_activity("up front-end 2", "1714557604002"))).status, 200);
  ASSERT_TRUE(wait_for_text(thread_of("1714557604002"), "needs the developer role"));
  EXPECT_FALSE(sent_text(thread_of("1714557604002"), "looked up")) << "both lookups worked";
  ASSERT_EQ(deliver(from_entra(kPia, "oid-pia", channel_activity("up docs 3", "1714557604003"))).status, 200);
  ASSERT_TRUE(wait_for_text(thread_of("1714557604003"), "Creating docs-pr-3"));
  ASSERT_EQ(run->jobs.jobs.size(), 2u);
  EXPECT_EQ(run->jobs.jobs[0].requested_by.str(), kDev);
  EXPECT_EQ(run->jobs.jobs[1].requested_by.str(), kPia);

  // Dana again: from the cache, no second Graph call.
  ASSERT_EQ(deliver(from_entra(kDev, "oid-dana", channel_activity("up docs 4", "1714557604004"))).status, 200);
  ASSERT_TRUE(wait_for_text(thread_of("1714557604004"), "Creating docs-pr-4"));
  EXPECT_EQ(fake.graph_requests(), 3);
  EXPECT_EQ(fake.member_requests(), 3) << "the e-mail binding asks the connector in parallel";
}

TEST_F(TeamsBotFlow, AMissingGraphPermissionIsNamedInTheDenialAndTheCommandIsStillAnswered) {
  fake.set_groups("oid-dana", {{"0a0a0a0a-0000-4000-8000-000000000001", "sre"}});
  fake.add_member(kChannel, kDev, "dana@acme.dev");
  fake.deny_graph(true);
  start(kGroupPolicy);
  ASSERT_EQ(deliver(from_entra(kDev, "oid-dana", channel_activity("up front-end 1", "1714557605001"))).status, 200);
  ASSERT_TRUE(wait_for_text(thread_of("1714557605001"), "needs the developer role"));
  EXPECT_TRUE(sent_text(thread_of("1714557605001"), "could not be looked up"));
  EXPECT_TRUE(sent_text(thread_of("1714557605001"), "GroupMember.Read.All"));
  EXPECT_TRUE(run->jobs.jobs.empty());

  // An activity without the user's Entra object id cannot be looked up in Graph either.
  ASSERT_EQ(deliver(from(kOther, channel_activity("up front-end 2", "1714557605002"))).status, 200);
  ASSERT_TRUE(wait_for_text(thread_of("1714557605002"), "aadObjectId"));
}

TEST_F(TeamsBotFlow, AnUncachedInvokeWaitsForTheLookupAndIsAnsweredInTheBody) {
  fake.add_member(kPersonal, "29:1alice-fake", "dev@acme.dev");
  start(kEmailPolicy);
  ASSERT_EQ(deliver(fake.make_activity("up front-end 9", kPersonal)).status, 200);
  ASSERT_TRUE(run_until(io, [&] { return run->jobs.jobs.size() == 1; }))
      << "Alice is a developer by her e-mail address";
  // Cached by now: answered at once.
  const Answer cached = deliver(invoke("extend", "front-end-pr-9 4h"));
  ASSERT_EQ(cached.status, 200);
  EXPECT_EQ(run->adapter->stats().deferred_invokes, 0u);
  EXPECT_EQ(json::parse(cached.body)["value"].get<std::string>().find("needs the"),
            std::string::npos)
      << cached.body;

  // Someone new clicks first thing: the answer waits for the lookup, still in the HTTP body.
  fake.add_member(kPersonal, kOther, "other@acme.dev");
  const Answer fresh = deliver(from(kOther, invoke("down", "front-end-pr-9")));
  ASSERT_EQ(fresh.status, 200);
  const json body = json::parse(fresh.body);
  EXPECT_EQ(body["type"], "application/vnd.microsoft.activity.message");
  EXPECT_NE(body["value"].get<std::string>().find("needs the"), std::string::npos) << fresh.body;
  EXPECT_EQ(run->adapter->stats().deferred_invokes, 1u);
  EXPECT_EQ(fake.member_requests(), 2);
}

// ---- installation, references and restarts ----

TEST_F(TeamsBotFlow, InstallInATeamSaysHelloWithTheIdToConfigure) {
  start();
  ASSERT_EQ(deliver(installed_in_team()).status, 200);
  ASSERT_TRUE(wait_for_text(kGeneral, "runbot is installed here"));
  EXPECT_TRUE(sent_text(kGeneral, std::string("Id for runbot's config: ") + kGeneral));
  EXPECT_TRUE(run->adapter->has_reference(kGeneral));
  const auto stored = run->the_bot->adapter_state(std::string("teams/conv/") + kGeneral);
  ASSERT_TRUE(stored);
  auto ref = reference_from_json(*stored);
  ASSERT_TRUE(ref) << *stored;
  EXPECT_EQ(ref->service_url, fake.service_url());
  EXPECT_EQ(ref->team_id, kGeneral);
  EXPECT_EQ(ref->tenant_id, "b28f1c2e-0000-4000-8000-00000000c0de");
}

TEST_F(TeamsBotFlow, InstallationUpdateAndUnknownTypesAreAcknowledgedAndIgnored) {
  start();
  json install = fixture("installation-update-add-reconstructed.json");
  install["serviceUrl"] = fake.service_url();
  EXPECT_EQ(deliver(install).status, 200);
  json typing = fake.make_activity("", kPersonal);
  typing["type"] = "typing";
  EXPECT_EQ(deliver(typing).status, 200);
  io.run_for(100ms);
  EXPECT_TRUE(fake.calls.empty());
  EXPECT_EQ(run->adapter->stats().ignored, 2u);
}

TEST_F(TeamsBotFlow, ProactiveNotificationsReachTheChannelAfterARestart) {
  start();
  ASSERT_EQ(deliver(installed_in_team()).status, 200);
  ASSERT_TRUE(wait_for_text(kGeneral, "runbot is installed here"));

  restart();
  EXPECT_TRUE(run->adapter->has_reference(kGeneral)) << "restored from the registry snapshot";
  const std::size_t calls_before = fake.calls.size();
  // A notification with no inbound activity since the restart: the stored serviceUrl is trusted.
  bot::Message note;
  note.kind = bot::NoticeKind::budget_alert;
  note.title = "Team web has used 80% of its monthly budget";
  std::optional<bot::Result<bot::PostResult>> posted;
  bot::PostRequest req;
  req.channel = bot::ChannelId{kGeneral};
  req.message = note;
  run->adapter->post(req, [&](bot::Result<bot::PostResult> r) { posted = std::move(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return posted.has_value(); }, 10s));
  ASSERT_TRUE(*posted) << posted->error().message;
  EXPECT_EQ((*posted)->message_id.rfind(std::string(kGeneral) + ";messageid=", 0), 0u)
      << (*posted)->message_id;
  ASSERT_GT(fake.calls.size(), calls_before);
  EXPECT_EQ(fake.calls.back().status, 201);
  EXPECT_EQ(fake.calls.back().body["channelData"]["channel"]["id"], kGeneral);
}

TEST_F(TeamsBotFlow, MentionsAfterARestartAskTheConversationForNamesOnce) {
  constexpr const char* kDana = "29:1dev-dana";
  constexpr const char* kGhost = "29:1left-the-team";
  fake.add_member(kGeneral, kDana, "dana@acme.dev", "", "Dana Developer");
  start();
  ASSERT_EQ(deliver(installed_in_team()).status, 200);
  ASSERT_TRUE(wait_for_text(kGeneral, "runbot is installed here"));
  restart();  // display names learned so far are gone

  auto post_mentioning = [&](const std::vector<std::string>& who) {
    bot::Message note;
    note.kind = bot::NoticeKind::interruption;
    note.title = "Spot interruption";
    note.text = "";
    for (const auto& id : who) {
      note.text += "@" + id + " ";
      note.mentions.push_back(bot::UserId{id});
    }
    bot::PostRequest req;
    req.channel = bot::ChannelId{kGeneral};
    req.message = note;
    std::optional<bot::Result<bot::PostResult>> posted;
    run->adapter->post(req, [&](bot::Result<bot::PostResult> r) { posted = std::move(r); });
    EXPECT_TRUE(run_until(io, [&] { return posted.has_value(); }, 10s));
    EXPECT_TRUE(posted && *posted);
    return fake.calls.back().body.dump();
  };
  const std::string first = post_mentioning({kDana, kGhost});
  EXPECT_NE(first.find("<at>Dana Developer</at>"), std::string::npos) << first;
  EXPECT_NE(first.find("<at>29:1left-the-team</at>"), std::string::npos)
      << "a user the connector does not know is mentioned by id: " << first;
  EXPECT_EQ(run->adapter->stats().name_lookups, 2u);
  EXPECT_EQ(member_lookups(fake), (std::vector<std::string>{std::string(kGeneral) + "|" + kDana,
                                                            std::string(kGeneral) + "|" + kGhost}));

  const std::string second = post_mentioning({kDana, kGhost});
  EXPECT_NE(second.find("<at>Dana Developer</at>"), std::string::npos) << second;
  EXPECT_EQ(run->adapter->stats().name_lookups, 2u) << "names and failures are remembered";
}

TEST_F(TeamsBotFlow, EnvironmentThreadInAChannelContinuesAfterARestart) {
  start();
  ASSERT_EQ(deliver(channel_activity("up front-end 11", "1714557600311")).status, 200);
  ASSERT_TRUE(run_until(io, [&] { return run->jobs.jobs.size() == 1; }));
  ASSERT_TRUE(settled(kChannel));
  std::string card_thread;
  for (const auto& c : fake.calls) {
    if (c.method == "POST" && c.segments.empty() && c.status == 201)
      card_thread = c.body["channelData"]["channel"]["id"];
  }
  ASSERT_EQ(card_thread, kChannel);
  const bot::JobId job = run->jobs.jobs[0].id;

  restart();
  const std::size_t before = fake.calls.size();
  bot::LifecycleEvent progress;
  progress.id = "ev-after-restart";
  progress.kind = bot::LifecycleKind::progress;
  progress.env = bot::EnvId{"front-end-pr-11"};
  progress.job = job;
  progress.stage = "deploy";
  progress.stage_index = 2;
  progress.stage_count = 3;
  progress.message = "helm upgrade --install";
  run->the_bot->on_lifecycle(progress);
  ASSERT_TRUE(run_until(
      io,
      [&] {
        for (std::size_t i = before; i < fake.calls.size(); ++i) {
          const auto& c = fake.calls[i];
          if (c.method == "POST" && c.status == 201 &&
              card_text(c.body).find("Stage deploy") != std::string::npos)
            return true;
        }
        return false;
      },
      10s));
  bool edited_card = false;
  for (std::size_t i = before; i < fake.calls.size(); ++i) {
    const auto& c = fake.calls[i];
    EXPECT_TRUE(c.segments.empty() || c.segments[0].rfind(kChannel, 0) == 0 ||
                c.segments[0] == kChannel)
        << c.path;
    if (c.method == "PUT" && c.status == 200) edited_card = true;
    EXPECT_FALSE(c.method == "POST" && c.segments.empty())
        << "no second thread for the same environment";
  }
  EXPECT_TRUE(edited_card) << "the status card restored from state is edited in place";
}

// ---- delivery errors ----

TEST_F(TeamsBotFlow, RateLimitedAndBadGatewayAreRetriedByTheOutbox) {
  start();
  ASSERT_EQ(deliver(installed_in_team()).status, 200);
  ASSERT_TRUE(wait_for_text(kGeneral, "runbot is installed here"));
  fake.fail_next(429, 1, /*retry_after_seconds=*/1);
  fake.fail_next(502, 1);
  bot::Message m;
  m.kind = bot::NoticeKind::reply;
  m.title = "spot interruption summary";
  run->outbox->post("teams", bot::ChannelId{kGeneral}, m);
  ASSERT_TRUE(run_until(
      io,
      [&] {
        for (const auto& c : fake.calls) {
          if (c.status == 201 && c.segments.empty() &&
              card_text(c.body["activity"]).find("spot interruption summary") !=
                  std::string::npos) {
            return true;
          }
        }
        return false;
      },
      15s));
  std::vector<int> statuses;
  for (const auto& c : fake.calls) {
    if (c.segments.empty() && c.method == "POST") statuses.push_back(c.status);
  }
  EXPECT_EQ(statuses, (std::vector<int>{429, 502, 201}))
      << "each failure retried, the message delivered once";
  EXPECT_TRUE(run_until(io, [&] { return run->outbox->pending() == 0; }))
      << "delivered, nothing left";
}

// Issue "Every answer arrives", case 4: a reply answered with 429 Retry-After: 1 (or 502) is
// sent again by the outbox, once, instead of being dropped with a warning.
TEST_F(TeamsBotFlow, RepliesThatMeet429Or502AreSentAgainOnce) {
  start();
  constexpr int kCommands = 20;
  int lost = 0;
  int doubled = 0;
  // Five rounds of four commands; the first reply of each round meets a 429 or a 502.
  for (int i = 0; i < kCommands; ++i) {
    if (i % 4 == 0) {
      ASSERT_TRUE(run_until(io, [&] { return run->outbox->pending() == 0; }, 20s)) << "round " << i / 4;
      if (i % 8 == 0) {
        fake.fail_next(429, 1, /*retry_after_seconds=*/1);
      } else {
        fake.fail_next(502, 1);
      }
    }
    json activity = fake.make_activity("describe env-" + std::to_string(i), kPersonal);
    activity["id"] = "act-reply-" + std::to_string(i);
    ASSERT_EQ(deliver(activity).status, 200);
  }
  ASSERT_TRUE(run_until(io, [&] { return run->outbox->pending() == 0; }, 20s));
  for (int i = 0; i < kCommands; ++i) {
    int n = 0;
    for (const auto& c : sends_to(kPersonal)) {
      n += c.status / 100 == 2 && card_text(c.body).find("env-" + std::to_string(i) + "'") != std::string::npos;
    }
    lost += n == 0;
    doubled += n > 1;
  }
  std::printf("delivery-under-faults: case=teams-reply-429-502 sent=%d lost=%d doubled=%d\n", kCommands, lost, doubled);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(doubled, 0);
  EXPECT_EQ(run->metrics.value("runbot_messages_failed_total", {{"platform", "teams"}, {"reason", "rate_limited"}}), 0);
}

TEST_F(TeamsBotFlow, BlockedConversationStopsAndIsRemembered) {
  start();
  ASSERT_EQ(deliver(fake.make_activity("help", kPersonal)).status, 200);
  ASSERT_TRUE(wait_for_text(kPersonal, "runbot: per-PR environments on Kubernetes"));
  fake.block_next(1);
  std::optional<bot::Result<bot::PostResult>> first;
  bot::PostRequest req;
  req.channel = bot::ChannelId{kPersonal};
  req.message.title = "front-end-pr-1 is ready";
  run->adapter->post(req, [&](bot::Result<bot::PostResult> r) { first = std::move(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return first.has_value(); }, 10s));
  ASSERT_FALSE(*first);
  EXPECT_FALSE(first->error().is_retryable()) << "the outbox must not retry a blocked conversation";
  const std::size_t calls = fake.calls.size();

  std::optional<bot::Result<bot::PostResult>> second;
  run->adapter->post(req, [&](bot::Result<bot::PostResult> r) { second = std::move(r); });
  ASSERT_TRUE(run_until(io, [&] { return second.has_value(); }));
  ASSERT_FALSE(*second);
  EXPECT_NE(second->error().message.find("blocked"), std::string::npos) << second->error().message;
  EXPECT_EQ(fake.calls.size(), calls) << "nothing more is sent to a blocked conversation";
  const auto stored = run->the_bot->adapter_state(std::string("teams/conv/") + kPersonal);
  ASSERT_TRUE(stored);
  EXPECT_TRUE(reference_from_json(*stored)->blocked) << *stored;
  EXPECT_EQ(run->adapter->stats().blocked, 1u);

  // The user writes to the bot again: the conversation is usable again.
  ASSERT_EQ(deliver(fake.make_activity("list", kPersonal)).status, 200);
  std::optional<bot::Result<bot::PostResult>> third;
  run->adapter->post(req, [&](bot::Result<bot::PostResult> r) { third = std::move(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return third.has_value(); }, 10s));
  EXPECT_TRUE(*third) << third->error().message;
}

TEST_F(TeamsBotFlow, PostingWhereTheBotWasNeverInstalledNamesTheChannel) {
  start();
  std::optional<bot::Result<bot::PostResult>> r;
  bot::PostRequest req;
  req.channel = bot::ChannelId{"19:never@thread.tacv2"};
  req.message.title = "hello";
  run->adapter->post(req, [&](bot::Result<bot::PostResult> x) { r = std::move(x); });
  ASSERT_TRUE(run_until(io, [&] { return r.has_value(); }));
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error().code, bot::Errc::invalid_argument);
  EXPECT_NE(r->error().message.find("19:never@thread.tacv2"), std::string::npos);
  EXPECT_NE(r->error().message.find("Install the runbot app"), std::string::npos)
      << r->error().message;
  EXPECT_TRUE(fake.calls.empty());
}

}  // namespace
}  // namespace runbot::teams
